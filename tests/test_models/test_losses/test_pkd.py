import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from mmkd.models.losses import PKDLoss


def official_pkd(preds_s, preds_t, loss_weight=1.0, resize_stu=True):
    """Written afresh from mmrazor's ``PKDLoss`` (the official PKD code):
    each channel standardised over (N, H, W) with the unbiased std + 1e-6,
    then MSE / 2 per level, levels summed."""

    def norm(feat):
        n, c, h, w = feat.shape
        rows = feat.transpose(0, 1).reshape(c, -1)
        rows = (rows - rows.mean(-1, keepdim=True)) / (
            rows.std(-1, keepdim=True) + 1e-6)
        return rows.reshape(c, n, h, w).transpose(0, 1)

    total = 0.
    for s, t in zip(preds_s, preds_t):
        if s.shape[2:] != t.shape[2:]:
            if resize_stu:
                s = F.interpolate(s, t.shape[2:], mode='bilinear')
            else:
                t = F.interpolate(t, s.shape[2:], mode='bilinear')
        total = total + F.mse_loss(norm(s), norm(t)) / 2
    return total * loss_weight


def test_hand_computed():
    # one channel, values (1, 2, 3, 4) against (4, 3, 2, 1): r = -1 and
    # mean(z^2) = 3/4 (unbiased std), so mean((2 z)^2) / 2 = 1.5
    s = torch.tensor([[[[1., 2.], [3., 4.]]]])
    assert_close(PKDLoss()(s, s.flip(-1).flip(-2)), torch.tensor(1.5),
                 atol=1e-5, rtol=1e-5)
    # invariant to each channel's scale and offset
    t = torch.cat([3 * s + 1, 0.5 * s - 2], dim=1)
    s2 = torch.cat([s, s], dim=1)
    assert float(PKDLoss()(s2, t)) < 1e-10


@pytest.mark.parametrize('resize_stu', [True, False])
def test_matches_official_values_and_gradients(resize_stu):
    torch.manual_seed(0)
    s = [torch.randn(2, 4, 8, 8, dtype=torch.float64),
         torch.randn(2, 4, 3, 3, dtype=torch.float64)]
    t = [torch.randn(2, 4, 8, 8, dtype=torch.float64),
         torch.randn(2, 4, 6, 6, dtype=torch.float64)]
    s_ours = [x.clone().requires_grad_() for x in s]
    s_ref = [x.clone().requires_grad_() for x in s]
    ours = PKDLoss(resize_stu, loss_weight=6.)(s_ours, t)
    ref = official_pkd(s_ref, t, 6., resize_stu)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    for a, b in zip(s_ours, s_ref):
        assert_close(a.grad, b.grad)


def test_teacher_gets_no_gradient():
    s = torch.randn(2, 4, 4, 4, requires_grad=True)
    t = torch.randn(2, 4, 4, 4, requires_grad=True)
    PKDLoss()(s, t).backward()
    assert s.grad is not None and t.grad is None


def test_channel_mismatch_names_the_adapter():
    with pytest.raises(ValueError, match='adapter=True'):
        PKDLoss()(torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4))
