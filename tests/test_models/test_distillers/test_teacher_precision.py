"""The teacher's forward in reduced precision (``model.teacher.precision``).

bf16 autocast runs on CPUs too, so the reduced-precision path is exercised
here; the loss tolerance over every method is in test_loss_values.py.
"""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from test_single_teacher import first_batch

from mmkd.models.distillers.taps import TapsComplete
from mmkd.utils.precision import autocast_dtype, cast_floats, weights_in
from tiny_setups import ROI_LOSSES, distill_config, roi_config


def build(cfg, precision):
    cfg.model.teacher.precision = precision
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).train()


def flat(records):
    out = []
    for value in records.values():
        value = value if isinstance(value, (tuple, list)) else [value]
        out += [v for v in value if torch.is_tensor(v)]
    return out


def test_auto_is_full_precision_on_cpu_and_explicit_dtypes_anywhere():
    cpu = torch.device('cpu')
    assert autocast_dtype('auto', cpu) is None
    assert autocast_dtype('fp32', cpu) is None
    assert autocast_dtype('bf16', cpu) is torch.bfloat16
    assert autocast_dtype('fp16', torch.device('cuda')) is torch.float16


def test_cast_floats_reaches_nested_floats_only():
    half = torch.ones(2, dtype=torch.bfloat16)
    labels = torch.arange(2)
    out = cast_floats(dict(a=(half, labels), b=[half], c='x'), torch.float32)
    assert out['a'][0].dtype == torch.float32 and out['a'][1] is labels
    assert out['b'][0].dtype == torch.float32 and out['c'] == 'x'


def test_bad_precision_fails_at_build_naming_the_key(det_files):
    cfg = distill_config(det_files)
    with pytest.raises(ValueError, match=r"model\.teacher\.precision must "
                       r"be one of \('auto', 'fp32', 'bf16', 'fp16'\).*"
                       r"'float64'"):
        build(cfg, 'float64')


def test_bf16_teacher_records_and_pairings_come_back_in_fp32(det_files):
    """The teacher and the pairings' teacher heads run in bf16; every
    record a loss sees is fp32 again, and the losses train the student."""
    cfg = roi_config(
        det_files, dict(ROI_LOSSES, kd=dict(ROI_LOSSES['kd'])))
    cfg.model.losses.pop('nd')  # its centroids come from a hook
    model32, model16 = build(cfg.copy(), 'fp32'), build(cfg, 'bf16')
    data = first_batch(cfg, model16)
    inputs, samples = data['inputs'], data['data_samples']

    seen = []
    hook = model16.teacher.backbone.register_forward_hook(
        lambda m, i, out: seen.append(out[0].dtype))
    torch.manual_seed(3)
    _, _, records16, paired16 = model16.collect(inputs, samples)
    hook.remove()
    assert seen == [torch.bfloat16]  # the teacher ran in bf16
    torch.manual_seed(3)
    _, _, records32, paired32 = model32.collect(inputs, samples)
    for a, b in zip(flat(records16) + flat(paired16),
                    flat(records32) + flat(paired32)):
        assert a.dtype == b.dtype
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=0.05, atol=0.05)
    assert not torch.equal(paired16['roi.cls'][1], paired32['roi.cls'][1])

    torch.manual_seed(3)
    losses = model16.loss(inputs, samples)
    total = losses['distill.kd'] + losses['distill.reg']
    assert total.dtype == torch.float32
    total.backward()
    assert model16.student.roi_head.bbox_head.fc_cls.weight.grad.abs().sum(
    ) > 0
    assert all(p.grad is None for p in model16.teacher.parameters())


def test_fp32_teacher_leaves_an_outer_autocast(det_files):
    """'fp32' means full precision, also inside --amp's autocast."""
    model = build(distill_config(det_files), 'fp32')
    cfg = distill_config(det_files)
    data = first_batch(cfg, model)
    plain = model._teacher_records(data['inputs'], data['data_samples'])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        inside = model._teacher_records(data['inputs'], data['data_samples'])
    for a, b in zip(flat(plain), flat(inside)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_weights_cast_once_give_autocasts_outputs_exactly(det_files):
    """The frozen conv/linear weights are held in bf16 during the forward
    (cast once, not per call): the records equal plain autocast's, the
    weights are fp32 again after it, and new weights are seen."""
    model = build(distill_config(det_files), 'bf16')
    data = first_batch(distill_config(det_files), model)
    inputs, samples = data['inputs'], data['data_samples']
    teacher = model.teacher
    conv = teacher.backbone.conv1

    def plain_autocast():
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16), \
                model.teacher_taps.recording(stop_early=True):
            try:
                teacher._forward(inputs, samples)
            except TapsComplete:
                pass
            return cast_floats(model.teacher_taps.collect(), torch.float32)

    for _ in range(2):  # the second forward reuses the cast copies
        records = model._teacher_records(inputs, samples)
        assert conv.weight.dtype == torch.float32
        for a, b in zip(flat(records), flat(plain_autocast())):
            assert torch.equal(a, b)
    assert conv.__dict__['_reduced_copies']['weight'][1].dtype == \
        torch.bfloat16

    state = {k: v * 0.5 for k, v in teacher.state_dict().items()}
    teacher.load_state_dict(state)  # in place: the copies must follow
    records = model._teacher_records(inputs, samples)
    for a, b in zip(flat(records), flat(plain_autocast())):
        assert torch.equal(a, b)


def test_only_exact_conv_and_linear_types_are_cast():
    """A subclass may read its weight in other ops (weight
    standardisation): it keeps fp32 weights under autocast's rules."""
    from mmcv.cnn.bricks.conv_ws import ConvWS2d
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 1), ConvWS2d(4, 4, 1),
        torch.nn.Linear(4, 2)).requires_grad_(False)
    seen = {}
    with weights_in(model, torch.bfloat16):
        for i, module in enumerate(model):
            seen[i] = module.weight.dtype
    assert seen == {0: torch.bfloat16, 1: torch.float32, 2: torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
