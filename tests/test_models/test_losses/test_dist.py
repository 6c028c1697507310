import pytest
import torch
from torch.testing import assert_close

from mmkd.models.losses import DISTLoss
from mmkd.registry import MODELS


def official_dist(y_s, y_t, beta=1., gamma=1., use_sigmoid=False, tau=1.):
    """Written afresh from hunto/DIST_KD: ``segmentation/losses/dist_kd.py``
    (4-D logits to rows of classes, softmax or sigmoid, 1 - mean Pearson
    over rows and over columns), with the ``tau`` and ``tau^2`` of the
    classification loss (mmrazor's ``DISTLoss``)."""

    def pearson(x, y, eps=1e-8):
        x = x - x.mean(1).unsqueeze(1)
        y = y - y.mean(1).unsqueeze(1)
        return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1) + eps)

    if y_s.ndim == 4:
        k = y_s.shape[1]
        y_s = y_s.transpose(1, 3).reshape(-1, k)
        y_t = y_t.transpose(1, 3).reshape(-1, k)
    if use_sigmoid:
        y_s, y_t = (y_s / tau).sigmoid(), (y_t / tau).sigmoid()
    else:
        y_s, y_t = (y_s / tau).softmax(dim=1), (y_t / tau).softmax(dim=1)
    inter = 1 - pearson(y_s, y_t).mean()
    intra = 1 - pearson(y_s.transpose(0, 1), y_t.transpose(0, 1)).mean()
    return tau**2 * (beta * inter + gamma * intra)


def test_hand_computed():
    # two samples, two classes: softmax rows are (a, 1-a); any two such rows
    # correlate perfectly (r = 1) or reversedly (r = -1)
    s = torch.tensor([[1., 0.], [0., 1.]])
    t = torch.tensor([[0., 1.], [1., 0.]])
    # rows reversed (r = -1 each): inter = 2; columns reversed too: intra = 2
    assert_close(DISTLoss()(s, t), torch.tensor(4.))
    assert_close(DISTLoss(beta=1., gamma=0.)(s, t), torch.tensor(2.))
    assert_close(DISTLoss()(s, 3 * s), torch.tensor(0.), atol=1e-6,
                 rtol=0)


@pytest.mark.parametrize('kwargs', [
    dict(), dict(beta=2., gamma=0.5), dict(use_sigmoid=True), dict(tau=4.)])
@pytest.mark.parametrize('shape', [(16, 10), (2, 11, 6, 5)])
def test_matches_official_values_and_gradients(kwargs, shape):
    torch.manual_seed(0)
    s = torch.randn(*shape, dtype=torch.float64)
    t = torch.randn(*shape, dtype=torch.float64)
    s_ours, s_ref = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = DISTLoss(**kwargs, loss_weight=2.)(s_ours, t)
    ref = 2. * official_dist(s_ref, t, **kwargs)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s_ours.grad, s_ref.grad)


def test_teacher_gets_no_gradient_and_empty_is_zero():
    s = torch.randn(8, 5, requires_grad=True)
    t = torch.randn(8, 5, requires_grad=True)
    DISTLoss()(s, t).backward()
    assert s.grad is not None and t.grad is None
    empty = torch.zeros(0, 5, requires_grad=True)
    loss = DISTLoss()(empty, torch.zeros(0, 5))
    assert float(loss.detach()) == 0.
    loss.backward()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match='tau'):
        MODELS.build(dict(type='mmkd.DISTLoss', tau=-1))
    with pytest.raises(ValueError, match='avg_factor'):
        DISTLoss()(torch.randn(4, 3), torch.randn(4, 3), avg_factor=2.)
    with pytest.raises(ValueError, match='one shape'):
        DISTLoss()(torch.randn(4, 3), torch.randn(4, 5))
