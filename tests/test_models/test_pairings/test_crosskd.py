"""CrossKDPairing + its losses: parity with the official CrossKDGFL."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import GIoULoss
from mmdet.models.utils import multi_apply, unpack_gt_instances
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.testing import assert_close

from tiny_setups import REPO, gfl_setup

IDX = 1  # of the 2 stacked convs: the teacher's last conv is reused


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    # equal head widths, as CrossKD needs; different backbones
    return gfl_setup(str(tmp_path_factory.mktemp('crosskd')),
                     stacked_convs=2, teacher_neck=16)


def crosskd_config(files, idx=IDX):
    frag = Config.fromfile(f'{REPO}/configs/_base_/methods/crosskd.py')
    cfg = Config.fromfile(files['student'])
    cfg.model = dict(
        type='mmkd.SingleTeacherDistiller',
        student=cfg.model,
        teacher=dict(config=files['teacher'], checkpoint=files['ckpt']),
        pairings=dict(cross=dict(frag.crosskd.pairings.cross,
                                 reused_teacher_head_idx=idx)),
        losses=frag.crosskd.losses)
    return cfg


@pytest.fixture(scope='module')
def setup(files):
    cfg = crosskd_config(files)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    distiller = MODELS.build(cfg.model).train()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    return distiller, distiller.data_preprocessor(batch, True)


def official(student, teacher, inputs, data_samples, idx):
    """Written afresh from jbwang1997/CrossKD, ``mmdet/models/detectors/
    crosskd_gfl.py`` (``forward_crosskd_single``, ``reuse_teacher_head``,
    ``align_scale``, ``pred_mimicking_loss_single``) with its config's
    losses (KDQualityFocalLoss beta 1; KL with T 1 summed over bins, 3.0;
    GIoU 2.0): the three KD losses, summed over levels."""

    def forward_single(x, scale, head):
        cls_feat, reg_feat = x, x
        hold_c, hold_r = x, x
        for i, conv in enumerate(head.cls_convs):
            cls_feat = conv(cls_feat, activate=False)
            if i + 1 == idx:
                hold_c = cls_feat
            cls_feat = conv.activate(cls_feat)
        for i, conv in enumerate(head.reg_convs):
            reg_feat = conv(reg_feat, activate=False)
            if i + 1 == idx:
                hold_r = reg_feat
            reg_feat = conv.activate(reg_feat)
        return (head.gfl_cls(cls_feat), scale(head.gfl_reg(reg_feat)).float(),
                hold_c, hold_r)

    def align(stu, tea):
        n, c, h, w = stu.size()
        stu = stu.permute(1, 0, 2, 3).reshape(c, -1)
        stu = (stu - stu.mean(-1, keepdim=True)) / (
            stu.std(-1, keepdim=True) + 1e-6)
        tea = tea.permute(1, 0, 2, 3).reshape(c, -1)
        stu = stu * tea.std(-1, keepdim=True) + tea.mean(-1, keepdim=True)
        return stu.reshape(c, n, h, w).permute(1, 0, 2, 3)

    def reuse(t_cls, t_reg, s_cls, s_reg, scale):
        head = teacher.bbox_head
        c, r = F.relu(align(s_cls, t_cls)), F.relu(align(s_reg, t_reg))
        for i in range(idx, head.stacked_convs):
            c, r = head.cls_convs[i](c), head.reg_convs[i](r)
        return head.gfl_cls(c), scale(head.gfl_reg(r)).float()

    with torch.no_grad():
        tea = multi_apply(forward_single, teacher.extract_feat(inputs),
                          teacher.bbox_head.scales, head=teacher.bbox_head)
    stu = multi_apply(forward_single, student.extract_feat(inputs),
                      student.bbox_head.scales, head=student.bbox_head)
    cross_cls, cross_reg = multi_apply(reuse, tea[2], tea[3], stu[2], stu[3],
                                       teacher.bbox_head.scales)
    head = student.bbox_head
    gts, _, metas = unpack_gt_instances(data_samples)
    anchors, valid = head.get_anchors([s.shape[-2:] for s in stu[0]], metas,
                                      device=inputs.device)
    targets = head.get_targets(anchors, valid, gts, metas)
    anchor_list, label_weights_list, avg_factor = (targets[0], targets[2],
                                                   targets[5])
    bins, out, weights_sum = head.reg_max + 1, [0., 0., 0.], 0.
    giou = GIoULoss(loss_weight=2.0)
    for level in range(len(stu[0])):
        t_cls = tea[0][level].permute(0, 2, 3, 1).reshape(-1, 3)
        r_cls = cross_cls[level].permute(0, 2, 3, 1).reshape(-1, 3)
        lw = label_weights_list[level].reshape(-1)
        p = t_cls.sigmoid()
        qfl = F.binary_cross_entropy_with_logits(
            r_cls, p, reduction='none') * (r_cls.sigmoid() - p).abs()
        out[0] = out[0] + (qfl * lw[:, None]).sum() / avg_factor
        t_reg = tea[1][level].permute(0, 2, 3, 1).reshape(-1, bins)
        r_reg = cross_reg[level].permute(0, 2, 3, 1).reshape(-1, bins)
        w = t_cls.max(dim=1)[0].sigmoid()
        w[lw == 0] = 0
        kl = F.kl_div(F.log_softmax(r_reg, 1), F.softmax(t_reg, 1),
                      reduction='none').sum(1)
        out[1] = out[1] + 3.0 * (kl * w[:, None].expand(-1, 4).reshape(-1)
                                 ).sum() / 4.0
        centres = head.anchor_center(anchor_list[level].reshape(-1, 4)) / \
            head.prior_generator.strides[level][0]
        t_box = head.bbox_coder.decode(
            centres, head.integral(tea[1][level].permute(0, 2, 3, 1).reshape(
                -1, 4 * bins)))
        r_box = head.bbox_coder.decode(
            centres, head.integral(cross_reg[level].permute(
                0, 2, 3, 1).reshape(-1, 4 * bins)))
        out[2] = out[2] + giou(r_box, t_box, weight=w, avg_factor=1.0)
        weights_sum = weights_sum + w.sum()
    return out[0], out[1] / weights_sum, out[2] / weights_sum


def test_losses_equal_the_official_crosskd(setup):
    distiller, data = setup
    ours = distiller.loss(data['inputs'], data['data_samples'])
    theirs = official(distiller.student, distiller.teacher, data['inputs'],
                      data['data_samples'], IDX)
    for key, value in zip(('cls_kd', 'reg_kd', 'bbox_kd'), theirs):
        assert float(ours[f'distill.{key}']) > 0, key
        assert_close(ours[f'distill.{key}'], value, rtol=1e-4, atol=1e-6,
                     msg=key)
    # and the same gradients to the student's head
    conv = distiller.student.bbox_head.cls_convs[0].conv.weight
    reg = distiller.student.bbox_head.reg_convs[0].conv.weight
    g_ours = torch.autograd.grad(
        sum(ours[f'distill.{k}'] for k in ('cls_kd', 'reg_kd', 'bbox_kd')),
        [conv, reg])
    theirs = official(distiller.student, distiller.teacher, data['inputs'],
                      data['data_samples'], IDX)
    g_theirs = torch.autograd.grad(sum(theirs), [conv, reg])
    for a, b in zip(g_ours, g_theirs):
        assert a.abs().sum() > 0
        assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_gradient_passes_the_frozen_teacher_head_to_the_student(setup):
    distiller, data = setup
    distiller.zero_grad()
    losses = distiller.loss(data['inputs'], data['data_samples'])
    losses['distill.cls_kd'].backward()
    head = distiller.student.bbox_head
    assert head.cls_convs[0].conv.weight.grad.abs().sum() > 0
    # the student's own last conv and predictor are not on the cross path
    assert head.cls_convs[1].conv.weight.grad is None
    assert head.gfl_cls.weight.grad is None
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_bad_settings_fail_at_build(files):
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match='reused_teacher_head_idx is 3'):
        MODELS.build(crosskd_config(files, idx=3).model)
    with pytest.raises(ValueError, match='reused_teacher_head_idx'):
        MODELS.build(crosskd_config(files, idx=0).model)
    cfg = crosskd_config(files)
    cfg.model.teacher = dict(config=copy.deepcopy(cfg.model.student),
                             checkpoint=None)
    cfg.model.teacher.config.bbox_head.feat_channels = 32
    with pytest.raises(ValueError, match='feat_channels'):
        MODELS.build(cfg.model)
