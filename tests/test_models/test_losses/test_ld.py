import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import KnowledgeDistillationKLDivLoss
from torch.testing import assert_close

from mmkd.models.losses import LDLoss
from mmkd.registry import MODELS


def reference(logits_s, logits_t, weight, temperature, avg_factor):
    """Loop over rows: w * T^2 * mean_bins p_t (log p_t - log p_s)."""
    total = 0.
    for z_s, z_t, w in zip(logits_s.tolist(), logits_t.tolist(),
                           weight.tolist()):
        e_s = [math.exp(v / temperature) for v in z_s]
        e_t = [math.exp(v / temperature) for v in z_t]
        kl = sum(t / sum(e_t) * math.log((t / sum(e_t)) / (s / sum(e_s)))
                 for s, t in zip(e_s, e_t))
        total += w * temperature**2 * kl / len(z_s)
    return total / avg_factor


def test_hand_computed():
    # p_s = (1/2, 1/2), p_t = (1/4, 3/4) at T = 1:
    # KL = 1/4 log(1/2) + 3/4 log(3/2), averaged over 2 bins, / avg_factor 4
    z_s, z_t = torch.zeros(1, 2), torch.tensor([[0., math.log(3.)]])
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    loss = LDLoss(temperature=1., loss_weight=1.)
    assert_close(loss(z_s, z_t), torch.tensor(kl / 2 / 4))
    # T = 2 on doubled logits is the same distributions, times T^2 = 4
    loss = LDLoss(temperature=2., loss_weight=0.5, avg_factor=None)
    assert_close(loss(2 * z_s, 2 * z_t), torch.tensor(0.5 * 4 * kl / 2))
    # a row weight of 3 triples it
    assert_close(
        LDLoss(temperature=1., loss_weight=1.)(z_s, z_t, torch.tensor([3.])),
        torch.tensor(3 * kl / 2 / 4))


@pytest.mark.parametrize('temperature,avg_factor', [(10., 4.), (2., 16.)])
def test_matches_loop_and_mmdet(temperature, avg_factor):
    torch.manual_seed(0)
    z_s, z_t = torch.randn(8, 17), torch.randn(8, 17) * 5
    weight = torch.rand(8)
    loss = LDLoss(temperature, avg_factor, loss_weight=0.25)
    expected = 0.25 * reference(z_s, z_t, weight, temperature, avg_factor)
    assert_close(loss(z_s, z_t, weight), torch.tensor(expected))
    mmdet = KnowledgeDistillationKLDivLoss(loss_weight=0.25, T=temperature)
    assert_close(
        loss(z_s, z_t, weight),
        mmdet(z_s, z_t, weight=weight, avg_factor=avg_factor))


def test_gradient_reaches_student_only():
    torch.manual_seed(0)
    z_s = torch.randn(4, 17, requires_grad=True)
    z_t = torch.randn(4, 17, requires_grad=True)
    weight = torch.rand(4, requires_grad=True)
    LDLoss()(z_s, z_t, weight).backward()
    assert z_s.grad.abs().sum() > 0
    assert z_t.grad is None and weight.grad is None
    # equal distributions: zero loss and zero gradient
    same = torch.randn(4, 17, requires_grad=True)
    value = LDLoss()(same, same.detach() * 1.)
    value.backward()
    assert_close(value, torch.tensor(0.))
    assert_close(same.grad, torch.zeros_like(same))


def test_no_rows_gives_zero_with_graph():
    z_s = torch.zeros(0, 17, requires_grad=True)
    value = LDLoss()(z_s, torch.zeros(0, 17), torch.zeros(0))
    assert value.item() == 0 and not torch.isnan(value)
    value.backward()
    assert z_s.grad.shape == (0, 17)


def test_bad_inputs_and_args():
    with pytest.raises(ValueError, match='same shape'):
        LDLoss()(torch.zeros(4, 17), torch.zeros(4, 9))
    with pytest.raises(ValueError, match='same shape'):
        LDLoss()(torch.zeros(4, 17, 1), torch.zeros(4, 17, 1))
    with pytest.raises(ValueError, match='one weight per row'):
        LDLoss()(torch.zeros(4, 17), torch.zeros(4, 17), torch.ones(16))
    with pytest.raises(ValueError, match='temperature'):
        LDLoss(temperature=0)
    with pytest.raises(ValueError, match='avg_factor'):
        LDLoss(avg_factor=0)


def test_registered():
    loss = MODELS.build(dict(type='mmkd.LDLoss', temperature=2.))
    assert isinstance(loss, LDLoss) and loss.temperature == 2.
    z = torch.randn(3, 5)
    assert_close(
        loss(z, z.flip(1)), 0.25 * 4 * F.kl_div(
            F.log_softmax(z / 2, 1),
            F.softmax(z.flip(1) / 2, 1),
            reduction='none').mean(1).sum() / 4)
