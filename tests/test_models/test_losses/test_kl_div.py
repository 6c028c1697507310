"""KLDivLoss: batch-mean KL, as KD++'s KDLoss, against hand values."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import KnowledgeDistillationKLDivLoss

from mmkd.models.losses import KLDivLoss


def test_hand_computed_value_and_temperature():
    s = torch.tensor([[0., math.log(3.)]])  # softmax (1/4, 3/4)
    t = torch.tensor([[math.log(3.), 0.]])  # softmax (3/4, 1/4)
    expected = 0.75 * math.log(3.) + 0.25 * math.log(1 / 3.)
    assert float(KLDivLoss()(s, t)) == pytest.approx(expected)
    assert float(KLDivLoss(loss_weight=2.)(s, t)) == pytest.approx(
        2 * expected)
    # T = 2 halves the logits and multiplies by 4
    s2, t2 = torch.tensor([[0., 2 * math.log(3.)]]), torch.tensor(
        [[2 * math.log(3.), 0.]])
    assert float(KLDivLoss(temperature=2.)(s2, t2)) == pytest.approx(
        4 * expected)


def test_batchmean_as_the_official_code_and_c_times_mmdets():
    torch.manual_seed(0)
    s, t = torch.randn(6, 11), torch.randn(6, 11)
    for T in (1., 3.):
        official = F.kl_div(
            F.log_softmax(s / T, 1), F.softmax(t / T, 1),
            reduction='batchmean') * T * T
        ours = KLDivLoss(temperature=T)(s, t)
        assert torch.allclose(ours, official, atol=1e-6)
        mmdet = KnowledgeDistillationKLDivLoss(T=T)(s, t)
        assert torch.allclose(ours, 11 * mmdet, atol=1e-5)


def test_maps_average_over_positions():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 4)  # noqa: E731
    assert torch.allclose(KLDivLoss()(s, t), KLDivLoss()(flat(s), flat(t)))


def test_gradient_reaches_the_student_only():
    s = torch.randn(5, 3, requires_grad=True)
    t = torch.randn(5, 3, requires_grad=True)
    KLDivLoss()(s, t).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None


def test_empty_and_mismatched_inputs():
    s = torch.zeros(0, 3, requires_grad=True)
    out = KLDivLoss()(s, torch.zeros(0, 3))
    assert float(out) == 0 and not torch.isnan(out)
    out.backward()
    with pytest.raises(ValueError, match=r'one shape .*\(4, 3\) and \(4, 2\)'):
        KLDivLoss()(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError,
                       match='temperature must be a finite number > 0'):
        KLDivLoss(temperature=0)


def official_kd_loss(s_out, t_out, T, kd_weight):
    """Written afresh from WangYZ1608/Knowledge-Distillation-via-ND,
    ``Detection/model/utils.py``, ``KDLoss.forward``: KL(p_t || p_s) of the
    T-softened logits summed over classes, divided by the batch size
    ('batchmean'), times T^2 and kd_weight. One row at a time."""
    total = 0.
    for z_s, z_t in zip(s_out, t_out):
        log_p_s = z_s / T - torch.logsumexp(z_s / T, dim=0)
        log_p_t = z_t / T - torch.logsumexp(z_t / T, dim=0)
        total = total + (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return total / len(s_out) * T * T * kd_weight


@pytest.mark.parametrize('T,kd_weight', [(1., 1.), (4., 0.5)])
def test_matches_official_kdloss_values_and_gradients(T, kd_weight):
    torch.manual_seed(0)
    s = torch.randn(7, 9, dtype=torch.float64) * 3
    t = torch.randn(7, 9, dtype=torch.float64) * 3
    s_ours, s_ref = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = KLDivLoss(temperature=T, loss_weight=kd_weight)(s_ours, t)
    ref = official_kd_loss(s_ref, t, T, kd_weight)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(s_ours.grad, s_ref.grad)
