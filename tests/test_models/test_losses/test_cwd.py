import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from mmkd.models.losses import ChannelWiseDivergence
from mmkd.registry import MODELS


def official_cwd(preds_s, preds_t, tau=1.0, loss_weight=1.0):
    """Written afresh from mmrazor's ``ChannelWiseDivergence.forward``:
    rows of (N*C, H*W), one softmax per row, the KL summed over everything,
    times tau^2, divided by N*C."""
    n, c, h, w = preds_s.shape
    p_t = F.softmax(preds_t.reshape(-1, h * w) / tau, dim=1)
    total = torch.sum(p_t * F.log_softmax(preds_t.reshape(-1, h * w) / tau,
                                          dim=1) -
                      p_t * F.log_softmax(preds_s.reshape(-1, h * w) / tau,
                                          dim=1)) * tau**2
    return loss_weight * total / (c * n)


def test_hand_computed():
    # channel 0: student uniform over 2 positions, teacher one-hot -> log 2;
    # channel 1: equal -> 0; mean over (N C) = 2 channels
    s = torch.tensor([[[[0., 0.]], [[1., 2.]]]])
    t = torch.tensor([[[[0., 1e4]], [[1., 2.]]]])
    assert_close(ChannelWiseDivergence()(s, t),
                 torch.tensor(0.6931472 / 2))


@pytest.mark.parametrize('tau,loss_weight', [(1., 1.), (4., 3.)])
def test_matches_official_values_and_gradients(tau, loss_weight):
    torch.manual_seed(0)
    s = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    t = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    s_ours, s_ref = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = ChannelWiseDivergence(tau, loss_weight=loss_weight)(s_ours, t)
    ref = official_cwd(s_ref, t, tau, loss_weight)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s_ours.grad, s_ref.grad)


def test_levels_summed_and_teacher_gets_no_gradient():
    torch.manual_seed(0)
    s = [torch.randn(2, 4, 8, 8, requires_grad=True),
         torch.randn(2, 4, 4, 4, requires_grad=True)]
    t = [torch.randn(2, 4, 8, 8, requires_grad=True),
         torch.randn(2, 4, 4, 4, requires_grad=True)]
    loss = ChannelWiseDivergence()(s, t)
    assert_close(loss, official_cwd(s[0], t[0]) + official_cwd(s[1], t[1]))
    loss.backward()
    assert s[0].grad is not None and s[1].grad is not None
    assert t[0].grad is None and t[1].grad is None


def test_none_reduction_is_per_image_and_channel():
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    per = ChannelWiseDivergence(reduction='none')(s, t)
    assert per.shape == (2, 3)
    assert_close(per.mean(), ChannelWiseDivergence()(s, t))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match='tau'):
        MODELS.build(dict(type='mmkd.ChannelWiseDivergence', tau=0))
    with pytest.raises(ValueError, match='adapter=True'):
        ChannelWiseDivergence()(torch.randn(1, 2, 4, 4),
                                torch.randn(1, 3, 4, 4))
