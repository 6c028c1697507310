import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.testing import assert_close

from mmkd.models.losses import FGDLoss
from mmkd.models.losses.fgd import box_masks
from tiny_setups import distill_config


def official_fgd(loss, preds_s, preds_t, gt_bboxes, img_shapes):
    """Written afresh from yzd-v/FGD ``mmdet/distillation/losses/fgd.py``
    (``FeatureLoss.forward`` and its helpers), with the box masks filled
    rows by ``y`` and columns by ``x``, as mmrazor's ``FGDLoss`` does;
    ``loss`` lends its GcBlock layers and weights."""
    n, c, h, w = preds_s.shape

    def get_attention(preds, temp):
        value = torch.abs(preds)
        fea_map = value.mean(axis=1, keepdim=True)
        s_att = (h * w * F.softmax((fea_map / temp).view(n, -1),
                                   dim=1)).view(n, h, w)
        channel_map = value.mean(axis=2, keepdim=False).mean(
            axis=2, keepdim=False)
        return s_att, c * F.softmax(channel_map / temp, dim=1)

    s_t, c_t = get_attention(preds_t, loss.temp)
    s_s, c_s = get_attention(preds_s, loss.temp)
    mask_fg = torch.zeros_like(s_t)
    mask_bg = torch.ones_like(s_t)
    for i in range(n):
        b = gt_bboxes[i].clone()
        b[:, 0] = gt_bboxes[i][:, 0] / img_shapes[i][1] * w
        b[:, 2] = gt_bboxes[i][:, 2] / img_shapes[i][1] * w
        b[:, 1] = gt_bboxes[i][:, 1] / img_shapes[i][0] * h
        b[:, 3] = gt_bboxes[i][:, 3] / img_shapes[i][0] * h
        wmin, wmax = torch.floor(b[:, 0]).int(), torch.ceil(b[:, 2]).int()
        hmin, hmax = torch.floor(b[:, 1]).int(), torch.ceil(b[:, 3]).int()
        area = 1.0 / (hmax + 1 - hmin) / (wmax + 1 - wmin)
        for j in range(len(b)):
            region = mask_fg[i][hmin[j]:hmax[j] + 1, wmin[j]:wmax[j] + 1]
            mask_fg[i][hmin[j]:hmax[j] + 1, wmin[j]:wmax[j] + 1] = \
                torch.maximum(region, area[j])
        mask_bg[i] = torch.where(mask_fg[i] > 0, 0, 1)
        if torch.sum(mask_bg[i]):
            mask_bg[i] /= torch.sum(mask_bg[i])

    def scaled(feat, mask):
        out = feat * torch.sqrt(s_t.unsqueeze(1))
        out = out * torch.sqrt(c_t[:, :, None, None])
        return out * torch.sqrt(mask.unsqueeze(1))

    mse = torch.nn.MSELoss(reduction='sum')
    fg = mse(scaled(preds_s, mask_fg), scaled(preds_t, mask_fg)) / n
    bg = mse(scaled(preds_s, mask_bg), scaled(preds_t, mask_bg)) / n
    mask = torch.sum(torch.abs(c_s - c_t)) / n + torch.sum(
        torch.abs(s_s - s_t)) / n

    def pool(x, conv_mask):
        ctx = F.softmax(conv_mask(x).view(n, 1, h * w), dim=2).unsqueeze(-1)
        return torch.matmul(x.view(n, c, h * w).unsqueeze(1),
                            ctx).view(n, c, 1, 1)

    out_s = preds_s + loss.channel_add_conv_s(pool(preds_s, loss.conv_mask_s))
    out_t = preds_t + loss.channel_add_conv_t(pool(preds_t, loss.conv_mask_t))
    rela = mse(out_s, out_t) / n
    return (loss.alpha_fgd * fg + loss.beta_fgd * bg + loss.gamma_fgd * mask +
            loss.lambda_fgd * rela)


def samples(shapes):
    return [DetDataSample(metainfo=dict(img_shape=s)) for s in shapes]


def test_box_masks_hand_computed():
    # a 4x6 map of a 40x60 image: the box (10, 0)-(25, 15) covers columns
    # 1..3 (floor 1, ceil 2.5 -> 3) and rows 0..2 (ceil 1.5 -> 2): 9 cells
    fg, bg = box_masks([torch.tensor([[10., 0., 25., 15.]])], [(40, 60)],
                       (4, 6), 'cpu')
    expected = torch.zeros(4, 6)
    expected[0:3, 1:4] = 1 / 9
    assert_close(fg[0], expected)
    assert_close(bg[0], (expected == 0).float() / 15)
    # no boxes: all background
    fg, bg = box_masks([torch.zeros(0, 4)], [(40, 60)], (4, 6), 'cpu')
    assert fg.sum() == 0 and torch.allclose(bg.sum(), torch.tensor(1.))


def test_matches_official_values_and_gradients():
    torch.manual_seed(0)
    loss = FGDLoss(channels=8, alpha_fgd=1e-3, beta_fgd=5e-4,
                   gamma_fgd=5e-4, lambda_fgd=5e-6)
    # the context branches start at zero; give them values to compare
    for p in loss.parameters():
        p.data.normal_(0, 0.1)
    s = torch.randn(2, 8, 6, 10)
    t = torch.randn(2, 8, 6, 10)
    boxes = [torch.tensor([[4., 2., 30., 20.], [20., 10., 50., 28.]]),
             torch.tensor([[0., 0., 10., 10.]])]
    shapes = [(30, 50), (24, 40)]
    s_ours, s_ref = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = loss(s_ours, t, boxes, samples(shapes))
    ref = official_fgd(loss, s_ref, t, boxes, shapes)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s_ours.grad, s_ref.grad)


def test_starts_with_relation_as_mse_and_teacher_gets_no_gradient():
    torch.manual_seed(0)
    loss = FGDLoss(channels=4, alpha_fgd=0., beta_fgd=0., gamma_fgd=0.,
                   lambda_fgd=1.)
    s = torch.randn(2, 4, 5, 5, requires_grad=True)
    t = torch.randn(2, 4, 5, 5, requires_grad=True)
    value = loss(s, t, [torch.zeros(0, 4)] * 2, samples([(20, 20)] * 2))
    # zero-initialised context branches: the relation term is the plain MSE
    assert_close(value, ((s - t)**2).sum() / 2)
    value.backward()
    assert s.grad is not None and t.grad is None


def test_no_ground_truth_is_finite():
    torch.manual_seed(0)
    loss = FGDLoss(channels=4)
    value = loss(torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5),
                 [torch.zeros(0, 4)] * 2, samples([(20, 20)] * 2))
    assert torch.isfinite(value) and float(value) > 0


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match='temp'):
        FGDLoss(temp=0)
    with pytest.raises(ValueError, match='no layers yet'):
        FGDLoss()(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2),
                  [torch.zeros(0, 4)], samples([(8, 8)]))
    with pytest.raises(ValueError, match='avg_factor'):
        FGDLoss(channels=4)(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2),
                            [torch.zeros(0, 4)], samples([(8, 8)]),
                            avg_factor=2.)


def test_in_a_distiller_reads_the_boxes_and_trains_its_blocks(det_files):
    cfg = distill_config(det_files)
    cfg.model.losses = dict(
        fgd=dict(type='mmkd.FGDLoss', student='neck.fpn_convs.0.conv',
                 teacher='neck.fpn_convs.0.conv',
                 inputs=dict(gt_bboxes='batch.gt_bboxes',
                             data_samples='batch.data_samples')))
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    channels = Config.fromfile(det_files['teacher']).model.neck.out_channels
    assert model.distill_losses.fgd.channels == channels
    loader = Runner.build_dataloader(cfg.train_dataloader)
    batch = model.data_preprocessor(next(iter(loader)), True)
    losses = model(**batch, mode='loss')
    losses['distill.fgd'].backward()
    fgd = model.distill_losses.fgd
    assert fgd.conv_mask_s.weight.grad is not None
    assert fgd.channel_add_conv_t[-1].weight.grad is not None
    assert model.student.neck.fpn_convs[0].conv.weight.grad is not None
    assert all(p.grad is None for p in model.teacher.parameters())
