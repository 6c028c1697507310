import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch.testing import assert_close

from mmkd.models.losses.pixel_wise import PixelWiseKDLoss
from mmkd.registry import MODELS


def authors_pixel_wise(logits_s, logits_t):
    """Loop transcription of the official ``CriterionPixelWise``: the sum over
    every pixel of ``-sum_c p_t,c log p_s,c``, divided by ``H * W``."""
    n, _, h, w = logits_s.shape
    total = torch.zeros(())
    for i in range(n):
        for y in range(h):
            for x in range(w):
                p_t = torch.softmax(logits_t[i, :, y, x], dim=0)
                log_p_s = torch.log_softmax(logits_s[i, :, y, x], dim=0)
                total = total - (p_t * log_p_s).sum()
    return total / h / w


def test_hand_computed():
    # student p = (1/4, 3/4), teacher p = (1/2, 1/2):
    # -(1/2 log 1/4 + 1/2 log 3/4) = 1/2 log(16/3)
    logits_s = torch.tensor([0., math.log(3)]).view(1, 2, 1, 1)
    logits_t = torch.zeros(1, 2, 1, 1)
    expected = 0.5 * math.log(16 / 3)
    assert_close(PixelWiseKDLoss()(logits_s, logits_t), torch.tensor(expected))
    assert_close(
        PixelWiseKDLoss(loss_weight=10.)(logits_s, logits_t),
        torch.tensor(10 * expected))
    # T = 2 on doubled logits gives the same distributions, times T^2 = 4
    assert_close(
        PixelWiseKDLoss(temperature=2.)(2 * logits_s, 2 * logits_t),
        torch.tensor(4 * expected))


def test_matches_authors_divided_by_batch():
    torch.manual_seed(0)
    logits_s, logits_t = torch.randn(3, 5, 4, 6), torch.randn(3, 5, 4, 6)
    assert_close(PixelWiseKDLoss()(logits_s, logits_t),
                 authors_pixel_wise(logits_s, logits_t) / 3)


def test_batch_sum_is_the_official_reduction():
    torch.manual_seed(0)
    logits_s, logits_t = torch.randn(3, 5, 4, 6), torch.randn(3, 5, 4, 6)
    official = PixelWiseKDLoss(reduction='batch_sum')
    assert_close(
        official(logits_s, logits_t), authors_pixel_wise(logits_s, logits_t))
    # it grows with the batch: the same image twice counts twice
    assert_close(
        official(logits_s[:1].repeat(2, 1, 1, 1),
                 logits_t[:1].repeat(2, 1, 1, 1)),
        2 * official(logits_s[:1], logits_t[:1]))
    # ignored pixels add nothing; the divisor stays H * W
    gt = torch.zeros(3, 4, 6, dtype=torch.long)
    gt[:, :, 3:] = 255
    assert_close(
        official(logits_s, logits_t, gt),
        authors_pixel_wise(logits_s[..., :3], logits_t[..., :3]) / 2)


def test_skd_fragment_has_the_official_strength():
    """The paper's lambda_pi = 10 on the official sum over 8 images."""
    from tiny_setups import REPO
    fragment = osp.join(REPO, 'configs', '_base_', 'methods', 'skd.py')
    cfg = dict(Config.fromfile(fragment).skd.losses.pixel)
    for key in ('type', 'student', 'teacher', 'inputs'):
        cfg.pop(key)
    torch.manual_seed(0)
    logits_s, logits_t = torch.randn(8, 4, 5, 3), torch.randn(8, 4, 5, 3)
    assert_close(
        PixelWiseKDLoss(**cfg)(logits_s, logits_t),
        10 * authors_pixel_wise(logits_s, logits_t))


def test_ignore_index_masks_exactly():
    # pixel 0: 1/2 log(16/3) (see above); pixel 1: uniform student, log 2
    logits_s = torch.tensor([[0., 0.], [math.log(3), 0.]]).view(1, 2, 1, 2)
    logits_t = torch.tensor([[0., 5.], [0., -1.]]).view(1, 2, 1, 2)
    ce_0, ce_1 = 0.5 * math.log(16 / 3), math.log(2)
    loss = PixelWiseKDLoss()
    assert_close(loss(logits_s, logits_t), torch.tensor((ce_0 + ce_1) / 2))
    for gt, expected in (([[0, 255]], ce_0), ([[255, 7]], ce_1),
                         ([[1, 2]], (ce_0 + ce_1) / 2)):
        gt = torch.tensor(gt).view(1, 1, 2)
        assert_close(loss(logits_s, logits_t, gt), torch.tensor(expected))
        # (N, 1, H, W) labels are the same as (N, H, W)
        assert_close(
            loss(logits_s, logits_t, gt[:, None]), torch.tensor(expected))
    gt = torch.tensor([[[0, -1]]])
    assert_close(
        PixelWiseKDLoss(ignore_index=-1)(logits_s, logits_t, gt),
        torch.tensor(ce_0))


def test_no_valid_pixel_is_zero_with_zero_gradient():
    logits_s = torch.randn(2, 3, 2, 2, requires_grad=True)
    gt = torch.full((2, 2, 2), 255)
    loss = PixelWiseKDLoss()(logits_s, torch.randn(2, 3, 2, 2), gt)
    loss.backward()
    assert loss.item() == 0.
    assert torch.equal(logits_s.grad, torch.zeros_like(logits_s))


def test_label_map_is_resized_nearest():
    torch.manual_seed(0)
    logits_s, logits_t = torch.randn(1, 3, 1, 2), torch.randn(1, 3, 1, 2)
    loss = PixelWiseKDLoss()
    # nearest from width 4 to 2 keeps columns 0 and 2
    big = torch.tensor([[[0, 255, 255, 0]]])
    assert_close(
        loss(logits_s, logits_t, big),
        loss(logits_s, logits_t, torch.tensor([[[0, 255]]])))
    assert_close(
        loss(logits_s, logits_t, big),
        authors_pixel_wise(logits_s[..., :1], logits_t[..., :1]))


def test_gradient_reaches_student_only():
    torch.manual_seed(0)
    logits_s = torch.randn(2, 4, 3, 3, requires_grad=True)
    logits_t = torch.randn(2, 4, 3, 3, requires_grad=True)
    PixelWiseKDLoss()(logits_s, logits_t).backward()
    assert logits_t.grad is None
    # d/dz_s of the mean cross-entropy is (p_s - p_t) / number of pixels
    expected = (logits_s.softmax(1) - logits_t.softmax(1)).detach() / 18
    assert_close(logits_s.grad, expected)


@pytest.mark.parametrize('shape_t', [(2, 4, 3, 4), (2, 5, 3, 3), (1, 4, 3, 3)])
def test_shape_mismatch_raises(shape_t):
    with pytest.raises(
            ValueError,
            match=r'\(2, 4, 3, 3\).*' + r'\(' + ', '.join(map(str, shape_t)) +
            r'\)'):
        PixelWiseKDLoss()(torch.randn(2, 4, 3, 3), torch.randn(*shape_t))


def test_bad_inputs_raise():
    loss = PixelWiseKDLoss()
    with pytest.raises(ValueError, match='logits'):
        loss(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match='gt'):
        loss(
            torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2),
            torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='temperature=0'):
        PixelWiseKDLoss(temperature=0)
    with pytest.raises(ValueError, match=r"'batch_sum'.*reduction='avg'"):
        PixelWiseKDLoss(reduction='avg')


def test_mmdet_reductions_and_pixel_weights():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    gt = torch.randint(0, 3, (2, 4, 4))
    gt[0, 0] = 255
    per_pixel = PixelWiseKDLoss(reduction='none')(s, t, gt)
    assert per_pixel.shape == (2, 4, 4) and (per_pixel[0, 0] == 0).all()
    total = PixelWiseKDLoss(reduction='sum')(s, t, gt)
    assert_close(total, per_pixel.sum())
    assert_close(PixelWiseKDLoss()(s, t, gt), total / 28)  # labelled pixels
    weight = torch.rand(2, 4, 4)
    assert_close(PixelWiseKDLoss()(s, t, gt, weight=weight, avg_factor=3.),
                 (per_pixel * weight).sum() / 3.)


def test_builds_from_registry():
    loss = MODELS.build(
        dict(type='mmkd.PixelWiseKDLoss', temperature=2., loss_weight=10.))
    assert isinstance(loss, PixelWiseKDLoss)
    assert (loss.temperature, loss.loss_weight) == (2., 10.)
