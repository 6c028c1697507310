import math

import pytest
import torch
from torch.testing import assert_close

from mmkd.models import SigmoidSoftCELoss


def test_hand_computed():
    z_s = torch.tensor([[[[0.]], [[math.log(3.)]]]])  # p_s = 1/2, 3/4
    z_t = torch.tensor([[[[math.log(3.)]], [[0.]]]])  # p_t = 3/4, 1/2
    expected = -(0.75 * math.log(0.5) + 0.25 * math.log(0.5)) - (
        0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    assert_close(SigmoidSoftCELoss()(z_s, z_t), torch.tensor(expected))
    # levels are summed, loss_weight scales
    assert_close(
        SigmoidSoftCELoss(loss_weight=2.)([z_s, z_s], [z_t, z_t]),
        torch.tensor(4 * expected))


def test_temperature_softens_both_sides():
    z_s, z_t = torch.full((1, 1, 2, 2), 2.), torch.full((1, 1, 2, 2), 4.)
    p_t = torch.sigmoid(torch.tensor(2.))
    p_s = torch.sigmoid(torch.tensor(1.))
    expected = -(p_t * p_s.log() + (1 - p_t) * (1 - p_s).log())
    assert_close(SigmoidSoftCELoss(temperature=2.)(z_s, z_t), expected)


def test_gradients_reach_the_student_only_and_empty_is_zero():
    z_s = torch.randn(2, 6, 3, 3, requires_grad=True)
    z_t = torch.randn(2, 6, 3, 3, requires_grad=True)
    SigmoidSoftCELoss()(z_s, z_t).backward()
    assert z_s.grad.abs().sum() > 0 and z_t.grad is None
    empty = torch.zeros(0, 6, 3, 3, requires_grad=True)
    loss = SigmoidSoftCELoss()(empty, empty)
    assert loss.item() == 0 and not torch.isnan(loss)


def test_mismatched_heads_raise():
    with pytest.raises(ValueError, match=r'\(1, 6, 2, 2\).*\(1, 9, 2, 2\)'):
        SigmoidSoftCELoss()(torch.zeros(1, 6, 2, 2), torch.zeros(1, 9, 2, 2))
    with pytest.raises(ValueError,
                       match='temperature must be a finite number > 0'):
        SigmoidSoftCELoss(temperature=0)


def test_matches_a_loop_over_locations_and_channels():
    """The documented formula, one location and channel at a time: sum over
    the channels of -(p_t log p_s + (1 - p_t) log(1 - p_s)), p =
    sigmoid(z / T), averaged over the N * H * W locations, levels summed."""
    torch.manual_seed(0)
    T = 2.
    levels_s = [torch.randn(2, 3, 2, 3, dtype=torch.float64),
                torch.randn(2, 3, 1, 2, dtype=torch.float64)]
    levels_t = [torch.randn_like(z) * 3 for z in levels_s]
    ours_s = [z.clone().requires_grad_() for z in levels_s]
    ref_s = [z.clone().requires_grad_() for z in levels_s]
    ref = 0.
    for z_s, z_t in zip(ref_s, levels_t):
        n, c, h, w = z_s.shape
        level = 0.
        for i in range(n):
            for y in range(h):
                for x in range(w):
                    for k in range(c):
                        p_s = torch.sigmoid(z_s[i, k, y, x] / T)
                        p_t = torch.sigmoid(z_t[i, k, y, x] / T)
                        level = level - (p_t * p_s.log() +
                                         (1 - p_t) * (1 - p_s).log())
        ref = ref + level / (n * h * w)
    ours = SigmoidSoftCELoss(temperature=T, loss_weight=0.5)(ours_s, levels_t)
    assert_close(ours, 0.5 * ref)
    ours.backward()
    (0.5 * ref).backward()
    for a, b in zip(ours_s, ref_s):
        assert_close(a.grad, b.grad)
