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
    with pytest.raises(ValueError, match='temperature must be > 0'):
        SigmoidSoftCELoss(temperature=0)
