import math

import pytest
import torch
from torch.testing import assert_close

from mmkd.models.losses.pair_wise import PairWiseKDLoss
from mmkd.registry import MODELS


def loop_max_pool(feat, kernel):
    """Ceil-mode max pooling with stride = kernel, one window at a time."""
    kh, kw = kernel
    rows = []
    for i in range(math.ceil(feat.shape[2] / kh)):
        cols = [
            feat[:, :, i * kh:(i + 1) * kh, j * kw:(j + 1) * kw].amax((2, 3))
            for j in range(math.ceil(feat.shape[3] / kw))
        ]
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


def authors_sim_dis(f_s, f_t):
    """Loop transcription of the official ``sim_dis_compute``
    (irfanICMLL/structure_knowledge_distillation, ``utils/utils.py``, with
    ``L2`` and ``similarity``): positions divided by their detached channel
    L2 norm + 1e-8, summed squared differences of the cosine matrices /
    (H'W')^2 / N."""
    n, _, h, w = f_t.shape
    m = h * w
    total = torch.zeros(())
    for b in range(n):
        v_s, v_t = f_s[b].reshape(-1, m), f_t[b].reshape(-1, m)
        n_s = ((v_s**2).sum(0)**0.5).detach() + 1e-8
        n_t = ((v_t**2).sum(0)**0.5).detach() + 1e-8
        for i in range(m):
            for j in range(m):
                a_s = v_s[:, i] @ v_s[:, j] / (n_s[i] * n_s[j])
                a_t = v_t[:, i] @ v_t[:, j] / (n_t[i] * n_t[j])
                total = total + (a_t - a_s)**2 / m**2 / n
    return total


def authors_pair_wise(f_s, f_t, scale):
    """Official ``CriterionPairWiseforWholeFeatAfterPool.forward``
    (``utils/criterion.py``): max pooling, kernel = stride = int(scale *
    size) of the teacher's map, ceil mode, then ``sim_dis_compute``; with
    our guard against a kernel of 0."""
    kernel = [max(1, int(size * scale)) for size in f_t.shape[2:]]
    return authors_sim_dis(
        loop_max_pool(f_s, kernel), loop_max_pool(f_t, kernel))


def test_hand_computed_with_pooling():
    # 4x4 maps, scale 0.5: 2x2 windows give 4 positions. The student's
    # windows pool to (1, 0), (0, 1) / (1, 0), (0, 1); the teacher (3
    # channels) is (1, 0, 0) everywhere. Cosines differ (0 vs 1) for the
    # 8 pairs mixing the two kinds: 8 / 4^2 / 1.
    feat_s = torch.zeros(1, 2, 4, 4)
    feat_s[0, 0, 1, 0] = feat_s[0, 1, 0, 3] = 1.
    feat_s[0, 0, 3, 1] = feat_s[0, 1, 2, 2] = 1.
    feat_t = torch.zeros(1, 3, 4, 4)
    feat_t[0, 0] = 1.
    assert_close(PairWiseKDLoss()(feat_s, feat_t), torch.tensor(0.5))
    assert_close(
        PairWiseKDLoss(loss_weight=0.5)(feat_s, feat_t), torch.tensor(0.25))
    # scale 1: one position, whose cosine with itself is 1 on both sides
    assert_close(
        PairWiseKDLoss(pool_scale=1.)(feat_s, feat_t), torch.tensor(0.))


@pytest.mark.parametrize(
    'shape_s, shape_t, scale',
    [
        ((2, 3, 4, 4), (2, 3, 4, 4), 0.5),
        ((2, 3, 5, 7), (2, 6, 5, 7), 0.5),  # ceil mode, channels differ
        ((1, 4, 6, 5), (1, 2, 6, 5), 0.3),
        ((2, 3, 1, 6), (2, 3, 1, 6), 0.5),  # a side of 1: kernel 1
    ])
def test_matches_authors_value_and_gradient(shape_s, shape_t, scale):
    torch.manual_seed(0)
    feat_s = torch.randn(*shape_s, requires_grad=True)
    feat_t = torch.randn(*shape_t)
    loss = PairWiseKDLoss(pool_scale=scale)(feat_s, feat_t)
    grad, = torch.autograd.grad(loss, feat_s)
    ref = authors_pair_wise(feat_s, feat_t, scale)
    ref_grad, = torch.autograd.grad(ref, feat_s)
    assert_close(loss, ref)
    # the detached norm of the official code shapes the gradient too
    assert_close(grad, ref_grad)


def test_invariant_to_positive_scaling_per_position():
    torch.manual_seed(0)
    feat_s, feat_t = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    loss = PairWiseKDLoss(pool_scale=0.25)  # kernel 1: no pooling
    scale = torch.rand(2, 1, 4, 4) + 0.5
    assert_close(loss(feat_s * scale, feat_t), loss(feat_s, feat_t))
    assert loss(feat_s, feat_s).item() == pytest.approx(0., abs=1e-6)
    assert loss(feat_s, feat_t).item() > 0.


def test_levels_are_summed():
    torch.manual_seed(0)
    s1, t1 = torch.randn(2, 3, 4, 4), torch.randn(2, 4, 4, 4)
    s2, t2 = torch.randn(2, 3, 6, 2), torch.randn(2, 4, 6, 2)
    loss = PairWiseKDLoss(loss_weight=0.5)
    assert_close(loss([s1, s2], (t1, t2)), loss(s1, t1) + loss(s2, t2))


def test_gradient_reaches_student_only():
    torch.manual_seed(0)
    feat_s = torch.randn(2, 3, 4, 4, requires_grad=True)
    feat_t = torch.randn(2, 8, 4, 4, requires_grad=True)
    PairWiseKDLoss()(feat_s, feat_t).backward()
    assert feat_t.grad is None
    assert feat_s.grad.abs().sum() > 0


def test_empty_is_zero():
    loss = PairWiseKDLoss()(torch.zeros(0, 3, 4, 4), torch.zeros(0, 3, 4, 4))
    assert loss.item() == 0.


def test_bad_inputs_raise():
    loss = PairWiseKDLoss()
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 3, 4, 5\)'):
        loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match='batch'):
        loss(torch.randn(2, 3, 4, 4), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='levels'):
        loss([torch.randn(2, 3, 4, 4)] * 2, [torch.randn(2, 3, 4, 4)])
    for scale in (0., 1.5):
        with pytest.raises(ValueError, match=f'pool_scale={scale}'):
            PairWiseKDLoss(pool_scale=scale)


def test_builds_from_registry():
    loss = MODELS.build(
        dict(type='mmkd.PairWiseKDLoss', pool_scale=0.25, loss_weight=0.5))
    assert (loss.pool_scale, loss.loss_weight) == (0.25, 0.5)
