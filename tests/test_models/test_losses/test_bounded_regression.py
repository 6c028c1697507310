import pytest
import torch
from torch.testing import assert_close

from mmkd.models.losses import BoundedRegressionLoss
from mmkd.registry import MODELS


def reference(pred_s, pred_t, target, weight, margin, avg_factor=None):
    """Paper Eq. 1: sum_i w_i * (e_s if e_s + m > e_t else 0) over the N
    sampled rows, divided by N (or the box loss's avg_factor)."""
    num = 0.
    for s, t, y, w in zip(pred_s.tolist(), pred_t.tolist(), target.tolist(),
                          weight.tolist()):
        e_s = sum((a - b)**2 for a, b in zip(s, y))
        e_t = sum((a - b)**2 for a, b in zip(t, y))
        num += w * (e_s if e_s + margin > e_t else 0.)
    return num / (len(pred_s) if avg_factor is None else avg_factor)


def test_hand_computed():
    target = torch.zeros(3, 4)
    pred_t = torch.tensor([[1., 0, 0, 0]] * 3)  # e_t = 1 for every sample
    # e_s = 4, 0.81 and 1.21
    pred_s = torch.tensor([[2., 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 0, 1.1]])
    # margin 0: samples 0 and 2 are worse than the teacher, (4 + 1.21) / 3
    assert_close(BoundedRegressionLoss()(pred_s, pred_t, target),
                 torch.tensor(5.21 / 3))
    # margin 0.2: 0.81 + 0.2 > 1 switches sample 1 on too; loss_weight 0.5
    loss = BoundedRegressionLoss(margin=0.2, loss_weight=0.5)
    assert_close(loss(pred_s, pred_t, target), torch.tensor(0.5 * 6.02 / 3))
    # per-sample weights (0, 1, 1), margin 0: the positives' sum over all
    # three sampled rows (paper Eq. 1), not over the two positives
    weight = torch.tensor([0., 1., 1.])
    assert_close(BoundedRegressionLoss()(pred_s, pred_t, target, weight),
                 torch.tensor(1.21 / 3))
    # mmdet-style (N, 4) bbox_weights reduce by their max: same as above
    bbox_weights = torch.tensor([[0., 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
    assert_close(BoundedRegressionLoss()(pred_s, pred_t, target, bbox_weights),
                 torch.tensor(1.21 / 3))
    # the student box loss's avg_factor (e.g. 512 sampled RoIs) divides
    assert_close(
        BoundedRegressionLoss()(pred_s, pred_t, target, weight,
                                avg_factor=512), torch.tensor(1.21 / 512))
    assert_close(
        BoundedRegressionLoss(reduction='sum')(pred_s, pred_t, target,
                                               weight), torch.tensor(1.21))
    assert_close(
        BoundedRegressionLoss()(pred_s, pred_t, target, weight,
                                reduction_override='none'),
        torch.tensor([0., 0., 1.21]))


def test_tie_with_the_teacher_is_off():
    # e_s + margin == e_t is not "worse than the teacher": the term is 0
    pred_s = torch.tensor([[0., 1, 0, 0], [0.5, 0, 0, 0]])  # e_s = 1, 0.25
    pred_t = torch.tensor([[1., 0, 0, 0], [0, 0, 0, 1]])  # e_t = 1, 1
    target = torch.zeros(2, 4)
    assert BoundedRegressionLoss()(pred_s, pred_t, target).item() == 0
    # margin 0.75: sample 0 is on (1.75 > 1), sample 1 ties (0.25 + 0.75)
    assert_close(
        BoundedRegressionLoss(margin=0.75)(pred_s, pred_t, target),
        torch.tensor(1 / 2))


@pytest.mark.parametrize('margin', [0., 0.5])
def test_matches_loop(margin):
    torch.manual_seed(0)
    pred_s, pred_t, target = torch.randn(3, 8, 4).unbind(0)
    weight = torch.randint(0, 2, (8, )).float()
    loss = BoundedRegressionLoss(margin=margin, loss_weight=2.)
    expected = 2. * reference(pred_s, pred_t, target, weight, margin)
    assert_close(loss(pred_s, pred_t, target, weight), torch.tensor(expected))
    expected = 2. * reference(pred_s, pred_t, target, torch.ones(8), margin)
    assert_close(loss(pred_s, pred_t, target), torch.tensor(expected))
    expected = 2. * reference(pred_s, pred_t, target, weight, margin, 20)
    assert_close(loss(pred_s, pred_t, target, weight, avg_factor=20),
                 torch.tensor(expected))


def test_empty_is_zero_and_differentiable():
    pred_s = torch.zeros(0, 4, requires_grad=True)
    out = BoundedRegressionLoss()(pred_s, torch.zeros(0, 4), torch.zeros(0, 4),
                                  torch.zeros(0, 4))
    assert out.item() == 0 and not torch.isnan(out)
    out.backward()
    assert_close(pred_s.grad, torch.zeros(0, 4))


def test_gradient_reaches_student_only():
    pred_s = torch.tensor([[2., 0, 0, 0], [0, 0.5, 0, 0]], requires_grad=True)
    pred_t = torch.tensor([[1., 0, 0, 0]] * 2, requires_grad=True)
    target = torch.zeros(2, 4, requires_grad=True)
    BoundedRegressionLoss()(pred_s, pred_t, target).backward()
    assert pred_t.grad is None and target.grad is None
    # d/ds of e_s / 2 on the active sample 0, nothing on sample 1
    expected = torch.tensor([[2., 0, 0, 0], [0, 0, 0, 0]])
    assert_close(pred_s.grad, expected)


def test_errors():
    loss = BoundedRegressionLoss()
    with pytest.raises(ValueError, match='one shape'):
        loss(torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='one shape'):
        loss(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r'weight must have shape \(2,\)'):
        loss(
            torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4),
            torch.ones(3))
    with pytest.raises(ValueError, match='reduction must be one of'):
        BoundedRegressionLoss(reduction='avg')


def test_registered():
    loss = MODELS.build(dict(type='mmkd.BoundedRegressionLoss', margin=0.1))
    assert isinstance(loss, BoundedRegressionLoss) and loss.margin == 0.1
