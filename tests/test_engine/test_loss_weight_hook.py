import pytest

from mmkd.engine import DistillLossWeightHook


def test_schedule_factors():
    hook = DistillLossWeightHook(
        warmup=4,
        warmup_ratio=0.2,
        decay_begin=10,
        decay_end=20,
        end_factor=0.5,
        stop=30)
    assert [hook.factor(t) for t in (0, 2, 4, 9)] == \
        pytest.approx([0.2, 0.6, 1.0, 1.0])
    assert [hook.factor(t) for t in (10, 15, 20, 29, 30, 99)] == \
        pytest.approx([1.0, 0.75, 0.5, 0.5, 0.0, 0.0])


def test_default_is_constant_one():
    hook = DistillLossWeightHook()
    assert {hook.factor(t) for t in range(0, 1000, 37)} == {1.0}


@pytest.mark.parametrize('kwargs, match', [
    (dict(decay_begin=5), 'decay_begin=5 and decay_end=None'),
    (dict(decay_begin=5, decay_end=5), 'decay_end > decay_begin'),
    (dict(warmup=-1), 'warmup=-1'),
    (dict(warmup_ratio=2.0), 'warmup_ratio=2.0'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillLossWeightHook(**kwargs)
