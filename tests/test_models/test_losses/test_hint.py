import pytest
import torch
from torch.testing import assert_close

from mmkd.models import ConvAdapter, FeatureHintLoss


def test_hint_loss_hand_computed():
    s = torch.tensor([[[[1., 2.], [3., 4.]]]])
    t = torch.tensor([[[[0., 2.], [5., 4.]]]])
    # squared errors 1, 0, 4, 0 -> mean 1.25
    assert_close(FeatureHintLoss()(s, t), torch.tensor(1.25))
    assert_close(FeatureHintLoss(loss_weight=0.5)(s, t), torch.tensor(0.625))


def test_hint_loss_sums_levels():
    s = [torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 2, 2)]
    t = [torch.full((2, 3, 4, 4), 2.), torch.full((2, 3, 2, 2), 3.)]
    assert_close(FeatureHintLoss(loss_weight=2.)(s, t), torch.tensor(26.))
    with pytest.raises(ValueError, match='2 feature levels.*1'):
        FeatureHintLoss()(s, t[:1])


def test_hint_loss_empty_is_zero_not_nan():
    s = torch.zeros(0, 4, requires_grad=True)
    loss = FeatureHintLoss()(s, torch.zeros(0, 4))
    assert loss.item() == 0
    loss.backward()
    assert s.grad is not None


def test_gradients_reach_student_and_adapter_never_teacher():
    torch.manual_seed(0)
    s = torch.randn(2, 4, 3, 3, requires_grad=True)
    t = torch.randn(2, 8, 3, 3, requires_grad=True)
    adapter = ConvAdapter([4], [8])
    loss = FeatureHintLoss()(adapter([s])[0], t)
    loss.backward()
    assert s.grad.abs().sum() > 0
    assert adapter.convs[0].weight.grad.abs().sum() > 0
    assert t.grad is None


def paper_hint(levels_v, levels_z, gamma):
    """Chen et al. (NeurIPS 2017), L_Hint(V, Z) = ||V - Z||_2^2, with the
    normaliser FeatureHintLoss documents (the number of elements of
    each level), summed over levels and weighted by gamma."""
    total = 0.
    for v, z in zip(levels_v, levels_z):
        total = total + ((v - z)**2).sum() / v.numel()
    return gamma * total


def test_matches_paper_formula_values_and_gradients():
    torch.manual_seed(0)
    shapes = [(2, 4, 6, 5), (2, 4, 3, 3)]
    v = [torch.randn(*shape, dtype=torch.float64) for shape in shapes]
    z = [torch.randn(*shape, dtype=torch.float64) for shape in shapes]
    v_ours = [x.clone().requires_grad_() for x in v]
    v_ref = [x.clone().requires_grad_() for x in v]
    ours = FeatureHintLoss(loss_weight=0.5)(v_ours, z)
    ref = paper_hint(v_ref, z, 0.5)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    for a, b, x, t in zip(v_ours, v_ref, v, z):
        assert_close(a.grad, b.grad)
        # d/dV of gamma * ||V - Z||^2 / numel
        assert_close(a.grad, 0.5 * 2 * (x - t) / x.numel())


def test_follows_mmdet_loss_conventions():
    """weight, avg_factor and reduction_override as mmdet's MSELoss."""
    from mmdet.models.losses import MSELoss
    torch.manual_seed(0)
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    weight = torch.rand(4, 3)
    ours, theirs = FeatureHintLoss(loss_weight=0.5), MSELoss(loss_weight=0.5)
    for kwargs in (dict(), dict(weight=weight),
                   dict(weight=weight, avg_factor=5.),
                   dict(reduction_override='sum'),
                   dict(reduction_override='none')):
        torch.testing.assert_close(ours(s, t, **kwargs),
                                   theirs(s, t, **kwargs))
    with pytest.raises(ValueError, match=r"reduction_override must be one "
                       r"of \('none', 'mean', 'sum'\), got "
                       r"reduction_override='avg'"):
        ours(s, t, reduction_override='avg')
