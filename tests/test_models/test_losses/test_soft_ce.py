import math

import pytest
import torch
from mmdet.models.losses import CrossEntropyLoss
from torch.testing import assert_close

from mmkd.models.losses import WeightedSoftCELoss
from mmkd.registry import MODELS


def reference(logits_s, logits_t, temperature=1.0, bg_weight=1.5):
    """Per-sample loop over -sum_c w_c p_t,c log p_s,c, background last."""
    total = 0.
    for z_s, z_t in zip(logits_s.tolist(), logits_t.tolist()):
        e_s = [math.exp(v / temperature) for v in z_s]
        e_t = [math.exp(v / temperature) for v in z_t]
        ce = 0.
        for c in range(len(z_s)):
            w = bg_weight if c == len(z_s) - 1 else 1.0
            ce -= w * e_t[c] / sum(e_t) * math.log(e_s[c] / sum(e_s))
        total += ce
    return total / len(logits_s)


def test_hand_computed():
    # p_s = (1/2, 1/2), p_t = (1/4, 3/4), second column the background:
    # -(1 * 1/4 * log 1/2 + 1.5 * 3/4 * log 1/2) = 1.375 log 2
    z_s = torch.zeros(1, 2)
    z_t = torch.tensor([[0., math.log(3.)]])
    assert_close(WeightedSoftCELoss()(z_s, z_t),
                 torch.tensor(1.375 * math.log(2.)))
    # the same distributions at T = 2 (logits doubled), loss_weight 2
    loss = WeightedSoftCELoss(temperature=2., loss_weight=2.)
    assert_close(loss(2 * z_s, 2 * z_t), torch.tensor(2.75 * math.log(2.)))
    # background weight 1: plain soft cross-entropy
    assert_close(
        WeightedSoftCELoss(bg_weight=1.)(z_s, z_t), torch.tensor(math.log(2.)))


@pytest.mark.parametrize('temperature,bg_weight', [(1., 1.5), (3., 2.)])
def test_matches_loop(temperature, bg_weight):
    torch.manual_seed(0)
    z_s, z_t = torch.randn(5, 4), torch.randn(5, 4) * 3
    loss = WeightedSoftCELoss(temperature, bg_weight, loss_weight=0.7)
    expected = 0.7 * reference(z_s, z_t, temperature, bg_weight)
    assert_close(loss(z_s, z_t), torch.tensor(expected))


def test_dense_logits_and_levels():
    torch.manual_seed(0)
    z_s, z_t = torch.randn(2, 3, 2, 3), torch.randn(2, 3, 2, 3)
    # every (n, h, w) location is one sample with 3 logits
    flat_s = [
        z_s[n, :, h, w] for n in range(2) for h in range(2) for w in range(3)
    ]
    flat_t = [
        z_t[n, :, h, w] for n in range(2) for h in range(2) for w in range(3)
    ]
    dense = reference(torch.stack(flat_s), torch.stack(flat_t))
    loss = WeightedSoftCELoss()
    assert_close(loss(z_s, z_t), torch.tensor(dense))
    # two levels: the sum of the levels' losses
    small_s, small_t = torch.randn(4, 3), torch.randn(4, 3)
    expected = dense + reference(small_s, small_t)
    assert_close(loss((z_s, small_s), [z_t, small_t]), torch.tensor(expected))


def test_empty_is_zero_and_differentiable():
    z_s = torch.zeros(0, 4, requires_grad=True)
    out = WeightedSoftCELoss()(z_s, torch.zeros(0, 4))
    assert out.item() == 0 and not torch.isnan(out)
    out.backward()
    assert_close(z_s.grad, torch.zeros(0, 4))
    # an empty level adds nothing to a non-empty one
    z = torch.randn(3, 4)
    loss = WeightedSoftCELoss()
    assert_close(loss([z, z_s], [z * 2, torch.zeros(0, 4)]), loss(z, z * 2))


def test_gradient_reaches_student_only():
    z_s = torch.randn(3, 4, requires_grad=True)
    z_t = torch.randn(3, 4, requires_grad=True)
    WeightedSoftCELoss()(z_s, z_t).backward()
    assert z_s.grad is not None and z_s.grad.abs().sum() > 0
    assert z_t.grad is None
    # d/dz_s of -sum_c w_c p_t,c log p_s,c is p_s * sum(w p_t) - w p_t, / N
    w = torch.tensor([1., 1., 1., 1.5])
    p_t, p_s = z_t.detach().softmax(1), z_s.detach().softmax(1)
    grad = (p_s * (w * p_t).sum(1, keepdim=True) - w * p_t) / 3
    assert_close(z_s.grad, grad)


def test_errors():
    loss = WeightedSoftCELoss()
    with pytest.raises(ValueError, match='5 classes.* 4'):
        loss(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='differ in shape'):
        loss(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match='levels'):
        loss([torch.zeros(2, 4)], [torch.zeros(2, 4)] * 2)
    with pytest.raises(ValueError, match='temperature'):
        WeightedSoftCELoss(temperature=0.)


def test_registered():
    loss = MODELS.build(dict(type='mmkd.WeightedSoftCELoss', bg_weight=2.))
    assert isinstance(loss, WeightedSoftCELoss) and loss.bg_weight == 2.


def test_with_the_students_ce_gives_the_papers_l_cls():
    """Chen et al. (NeurIPS 2017, no official code): L_cls = mu * L_hard +
    (1 - mu) * L_soft, averaged over the N sampled RoIs, L_soft = -sum_c
    w_c P_t,c log P_s,c with w = 1.5 on the background. mmdet's CE at
    loss_weight mu over the same N rows plus this loss at 1 - mu is it,
    values and gradients."""
    torch.manual_seed(0)
    mu, n, c = 0.5, 6, 4  # background is column c - 1
    z_s = torch.randn(n, c, dtype=torch.float64)
    z_t = torch.randn(n, c, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (n, ))
    s_ours, s_ref = z_s.clone().requires_grad_(), z_s.clone().requires_grad_()
    ours = CrossEntropyLoss(loss_weight=mu)(
        s_ours, labels, torch.ones(n), avg_factor=n) + WeightedSoftCELoss(
            loss_weight=1 - mu)(s_ours, z_t)
    w = torch.ones(c, dtype=torch.float64)
    w[-1] = 1.5
    total = 0.
    for row_s, row_t, y in zip(s_ref, z_t, labels):
        log_p_s = row_s - torch.logsumexp(row_s, 0)
        p_t = (row_t - torch.logsumexp(row_t, 0)).exp()
        hard = -log_p_s[y]
        soft = -(w * p_t * log_p_s).sum()
        total = total + mu * hard + (1 - mu) * soft
    ref = total / n
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s_ours.grad, s_ref.grad)
