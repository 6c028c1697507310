"""CrossKD's pairings and fragments (GFL, RetinaNet, ATSS, FCOS heads): the
losses equal a transcription of the official detectors, values and
gradients, and only the student learns."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import CrossEntropyLoss, GIoULoss, IoULoss
from mmdet.models.utils import images_to_levels, unpack_gt_instances
from mmdet.utils import reduce_mean
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch.testing import assert_close

from tiny_setups import DENSE_CONFIG, DENSE_HEADS, REPO, dense_setup

IDX = 1  # of the 2 stacked convs: the teacher's last conv is reused
#: each tiny head's method fragment, and the fragment's losses
FRAGMENTS = dict(gfl='crosskd', retinanet='crosskd_retinanet',
                 atss='crosskd_atss', fcos='crosskd_fcos',
                 fcos_norm='crosskd_fcos')
KEYS = dict(crosskd=('cls_kd', 'reg_kd', 'bbox_kd'),
            crosskd_retinanet=('cls_kd', 'bbox_kd'),
            crosskd_atss=('cls_kd', 'bbox_kd', 'center_kd'),
            crosskd_fcos=('cls_kd', 'bbox_kd'))


def distiller_config(files, fragment, idx=IDX):
    block = Config.fromfile(
        f'{REPO}/configs/_base_/methods/{fragment}.py')[fragment]
    cfg = Config.fromfile(files['student'])
    cfg.model = dict(
        type='mmkd.SingleTeacherDistiller',
        student=cfg.model,
        teacher=dict(config=files['teacher'], checkpoint=files['ckpt']),
        pairings=dict(cross=dict(block.pairings.cross,
                                 reused_teacher_head_idx=idx)),
        losses=block.losses)
    return cfg


def tiny_files(root, name):
    # equal head widths, as CrossKD needs; different backbones
    return dense_setup(str(root), DENSE_CONFIG, stacked_convs=2,
                       teacher_neck=16, **DENSE_HEADS[name])


@pytest.fixture(scope='module', params=sorted(FRAGMENTS))
def setup(request, tmp_path_factory):
    fragment = FRAGMENTS[request.param]
    files = tiny_files(tmp_path_factory.mktemp(request.param), request.param)
    cfg = distiller_config(files, fragment)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    distiller = MODELS.build(cfg.model).train()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    data = distiller.data_preprocessor(batch, True)
    return request.param, fragment, distiller, data


# ---- the official computation, written afresh from jbwang1997/CrossKD ----
def held_forward(head, x, idx):
    """``forward_crosskd_single`` / ``forward_hkd_single``: each branch's
    final features and its output of conv ``idx`` without activation (the
    ConvModule's in-place ReLU then rectifies that tensor too)."""
    feats, holds = {}, {}
    for branch in ('cls_convs', 'reg_convs'):
        feat = x
        for i, conv in enumerate(getattr(head, branch)):
            feat = conv(feat, activate=False)
            if i + 1 == idx:
                holds[branch] = feat
            feat = conv.activate(feat)
        feats[branch] = feat
    return feats, holds


def predict(name, head, level, cls_feat, reg_feat):
    """The predictors of ``forward_*_single`` / ``reuse_teacher_head``."""
    if name == 'gfl':
        return dict(cls=head.gfl_cls(cls_feat),
                    reg=head.scales[level](head.gfl_reg(reg_feat)).float())
    if name == 'retinanet':
        return dict(cls=head.retina_cls(cls_feat),
                    reg=head.retina_reg(reg_feat))
    if name == 'atss':
        return dict(cls=head.atss_cls(cls_feat),
                    reg=head.scales[level](head.atss_reg(reg_feat)).float(),
                    centerness=head.atss_centerness(reg_feat))
    reg = head.scales[level](head.conv_reg(reg_feat)).float()
    if head.norm_on_bbox:
        reg = reg.clamp(min=0)
        if not head.training:
            reg = reg * head.strides[level]
    else:
        reg = reg.exp()
    return dict(cls=head.conv_cls(cls_feat), reg=reg)


def align(stu, tea):
    n, c, h, w = stu.size()
    stu = stu.permute(1, 0, 2, 3).reshape(c, -1)
    stu = (stu - stu.mean(-1, keepdim=True)) / (
        stu.std(-1, keepdim=True) + 1e-6)
    tea = tea.permute(1, 0, 2, 3).reshape(c, -1)
    stu = stu * tea.std(-1, keepdim=True) + tea.mean(-1, keepdim=True)
    return stu.reshape(c, n, h, w).permute(1, 0, 2, 3)


def official_outputs(name, student, teacher, inputs, idx):
    """Per level: the teacher's predictions and the reused (cross-head)
    ones."""
    head_t = teacher.bbox_head
    tea, cross = [], []
    with torch.no_grad():
        feats_t = teacher.extract_feat(inputs)
    for level, x in enumerate(student.extract_feat(inputs)):
        with torch.no_grad():
            final_t, hold_t = held_forward(head_t, feats_t[level], idx)
            tea.append(predict(name, head_t, level, final_t['cls_convs'],
                               final_t['reg_convs']))
        _, hold_s = held_forward(student.bbox_head, x, idx)
        reused = {}
        for branch in ('cls_convs', 'reg_convs'):
            feat = F.relu(align(hold_s[branch], hold_t[branch]))
            for i in range(idx, head_t.stacked_convs):
                feat = getattr(head_t, branch)[i](feat)
            reused[branch] = feat
        cross.append(predict(name, head_t, level, reused['cls_convs'],
                             reused['reg_convs']))
    return tea, cross


def rows(tensor, width):
    return tensor.permute(0, 2, 3, 1).reshape(-1, width)


def kd_qfl(pred, target, weight, avg_factor):
    """The official ``kd_quality_focal_loss`` (beta 1), mean over
    ``avg_factor`` (mmdet adds float32 eps to it)."""
    target = target.sigmoid()
    loss = F.binary_cross_entropy_with_logits(
        pred, target, reduction='none') * (pred.sigmoid() - target).abs()
    if weight is not None:
        loss = loss * weight[:, None]
    return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)


def official_gfl_losses(student, tea, cross, data_samples, inputs):
    """``CrossKDGFL.pred_mimicking_loss_single`` with its config's losses
    (quality focal KD, beta 1; KL with T 1 summed over bins, 3.0; GIoU
    2.0), summed over the levels; the two box terms over the total of their
    weights."""
    head = student.bbox_head
    gts, _, metas = unpack_gt_instances(data_samples)
    sizes = [t['cls'].shape[-2:] for t in tea]
    anchors, valid = head.get_anchors(sizes, metas, device=inputs.device)
    targets = head.get_targets(anchors, valid, gts, metas)
    anchors, label_weights, avg_factor = targets[0], targets[2], targets[5]
    bins, classes = head.reg_max + 1, head.cls_out_channels
    out, weights_sum = dict(cls_kd=0., reg_kd=0., bbox_kd=0.), 0.
    giou = GIoULoss(loss_weight=2.0)
    for level, (t, c) in enumerate(zip(tea, cross)):
        t_cls, c_cls = rows(t['cls'], classes), rows(c['cls'], classes)
        lw = label_weights[level].reshape(-1)
        out['cls_kd'] = out['cls_kd'] + kd_qfl(c_cls, t_cls, lw, avg_factor)
        w = t_cls.max(dim=1)[0].sigmoid()
        w[lw == 0] = 0
        kl = F.kl_div(F.log_softmax(rows(c['reg'], bins), 1),
                      F.softmax(rows(t['reg'], bins), 1),
                      reduction='none').sum(1)
        out['reg_kd'] = out['reg_kd'] + 3.0 * (
            kl * w[:, None].expand(-1, 4).reshape(-1)).sum() / 4.0
        centres = head.anchor_center(anchors[level].reshape(-1, 4)) / \
            head.prior_generator.strides[level][0]
        t_box, c_box = (head.bbox_coder.decode(
            centres, head.integral(rows(side['reg'], 4 * bins)))
                        for side in (t, c))
        out['bbox_kd'] = out['bbox_kd'] + giou(
            c_box, t_box, weight=w, avg_factor=1.0)
        weights_sum = weights_sum + w.sum()
    out['reg_kd'] = out['reg_kd'] / weights_sum
    out['bbox_kd'] = out['bbox_kd'] / weights_sum
    return out


def official_anchor_losses(name, student, tea, cross, data_samples, inputs):
    """``pred_mimicking_loss_single`` (RetinaNet) and
    ``pred_imitation_loss_single`` (ATSS), summed over the levels."""
    head = student.bbox_head
    gts, ignore, metas = unpack_gt_instances(data_samples)
    sizes = [t['cls'].shape[-2:] for t in tea]
    anchors, valid = head.get_anchors(sizes, metas, device=inputs.device)
    targets = head.get_targets(anchors, valid, gts, metas, ignore)
    if name == 'retinanet':
        labels, label_weights, *_, avg_factor = targets
        counts = [len(a) for a in anchors[0]]
        anchors = images_to_levels([torch.cat(a) for a in anchors], counts)
    else:
        anchors, labels, label_weights, *_, avg_factor = targets
        avg_factor = reduce_mean(torch.tensor(avg_factor).float()).item()
    classes = head.cls_out_channels
    out = dict(cls_kd=0., bbox_kd=0., center_kd=0.)
    giou, bce = GIoULoss(loss_weight=1.0), CrossEntropyLoss(use_sigmoid=True)
    for level, (t, c) in enumerate(zip(tea, cross)):
        t_cls, c_cls = rows(t['cls'], classes), rows(c['cls'], classes)
        lw = label_weights[level].reshape(-1)
        out['cls_kd'] = out['cls_kd'] + kd_qfl(c_cls, t_cls, lw, avg_factor)
        priors = anchors[level].reshape(-1, 4)
        t_box = head.bbox_coder.decode(priors, rows(t['reg'], 4))
        c_box = head.bbox_coder.decode(priors, rows(c['reg'], 4))
        w = t_cls.max(dim=1)[0].sigmoid()
        w[lw == 0] = 0
        out['bbox_kd'] = out['bbox_kd'] + giou(
            c_box, t_box, w, avg_factor=avg_factor)
        if name == 'atss':
            lab = labels[level].reshape(-1)
            pos = ((lab >= 0) & (lab < head.num_classes)).nonzero().squeeze(1)
            if len(pos) > 0:
                out['center_kd'] = out['center_kd'] + bce(
                    c['centerness'].permute(0, 2, 3, 1).reshape(-1)[pos],
                    t['centerness'].permute(0, 2, 3,
                                            1).reshape(-1)[pos].sigmoid(),
                    avg_factor=avg_factor)
    return out


def official_fcos_losses(student, tea, cross, data_samples, inputs):
    """``CrossKDFCOS.loss_by_feat``'s two KD terms (flattened, not per
    level), with mmkd's one departure: a normaliser of 1 when the batch has
    no positive (officially 1e-6)."""
    head = student.bbox_head
    gts, _, _ = unpack_gt_instances(data_samples)
    sizes = [t['cls'].shape[-2:] for t in tea]
    points = head.prior_generator.grid_priors(sizes, device=inputs.device)
    labels, bbox_targets = head.get_targets(points, gts)
    labels, bbox_targets = torch.cat(labels), torch.cat(bbox_targets)
    pos = ((labels >= 0) & (labels < head.num_classes)).nonzero().reshape(-1)
    denorm = max(
        reduce_mean(head.centerness_target(bbox_targets[pos]).sum()), 1e-6)
    if len(pos) == 0:
        denorm = 1.0
    classes = head.cls_out_channels
    points = torch.cat([p.repeat(len(inputs), 1) for p in points])
    t_cls = torch.cat([rows(t['cls'], classes) for t in tea])
    c_cls = torch.cat([rows(c['cls'], classes) for c in cross])
    t_box = head.bbox_coder.decode(points,
                                   torch.cat([rows(t['reg'], 4) for t in tea]))
    c_box = head.bbox_coder.decode(
        points, torch.cat([rows(c['reg'], 4) for c in cross]))
    w = t_cls.max(dim=1)[0].sigmoid()
    return dict(
        cls_kd=0.4 * kd_qfl(c_cls, t_cls, None, denorm),
        bbox_kd=IoULoss(loss_weight=0.75)(c_box, t_box, weight=w,
                                          avg_factor=denorm))


def official(name, student, teacher, inputs, data_samples, idx=IDX):
    tea, cross = official_outputs(name.split('_')[0], student, teacher,
                                  inputs, idx)
    if name == 'gfl':
        return official_gfl_losses(student, tea, cross, data_samples, inputs)
    if name.startswith('fcos'):
        return official_fcos_losses(student, tea, cross, data_samples, inputs)
    return official_anchor_losses(name, student, tea, cross, data_samples,
                                  inputs)


def held_params(student):
    """The student's parameters on the cross-head path: the backbone and
    each branch's first conv (of the held ``IDX = 1``)."""
    head = student.bbox_head
    return [
        student.backbone.conv1.weight, head.cls_convs[0].conv.weight,
        head.reg_convs[0].conv.weight
    ]


# ---- tests -------------------------------------------------------------
def test_losses_equal_the_official_crosskd(setup):
    name, fragment, distiller, data = setup
    inputs, samples = data['inputs'], data['data_samples']
    ours = distiller.loss(inputs, samples)
    theirs = official(name, distiller.student, distiller.teacher, inputs,
                      samples)
    keys = KEYS[fragment]
    for key in keys:
        assert float(ours[f'distill.{key}'].detach()) > 0, key
        assert_close(ours[f'distill.{key}'], theirs[key], rtol=1e-4,
                     atol=1e-6, msg=key)
    # and the same gradients to the student
    params = held_params(distiller.student)
    g_ours = torch.autograd.grad(
        sum(ours[f'distill.{k}'] for k in keys), params)
    theirs = official(name, distiller.student, distiller.teacher, inputs,
                      samples)
    g_theirs = torch.autograd.grad(sum(theirs[k] for k in keys), params)
    for a, b in zip(g_ours, g_theirs):
        assert a.abs().sum() > 0
        # sums in another order: close to the gradient's own scale
        assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_only_the_student_learns(setup):
    _, fragment, distiller, data = setup
    distiller.zero_grad()
    losses = distiller.loss(data['inputs'], data['data_samples'])
    sum(losses[f'distill.{k}'] for k in KEYS[fragment]).backward()
    student, teacher = distiller.student, distiller.teacher
    assert all(p.grad.abs().sum() > 0 for p in held_params(student))
    assert any(p.grad is not None for p in student.neck.parameters())
    # the student's own later convs and predictors are not on the path
    head = student.bbox_head
    later = [head.cls_convs[1], head.reg_convs[1]] + [
        m for n, m in head.named_children()
        if n.endswith(('_cls', '_reg', 'centerness'))
    ]
    assert all(p.grad is None for m in later for p in m.parameters())
    assert all(p.grad is None and not p.requires_grad
               for p in teacher.parameters())
    distiller.zero_grad()


def test_empty_ground_truth_gives_finite_losses(setup):
    name, fragment, distiller, data = setup
    samples = [sample.clone() for sample in data['data_samples']]
    for sample in samples:
        sample.gt_instances = InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    ours = distiller.loss(data['inputs'], samples)
    theirs = official(name, distiller.student, distiller.teacher,
                      data['inputs'], samples)
    for key in KEYS[fragment]:
        assert torch.isfinite(ours[f'distill.{key}']), key
        assert_close(ours[f'distill.{key}'], torch.as_tensor(theirs[key]),
                     rtol=1e-4, atol=1e-6, msg=key)


def test_bad_settings_fail_at_build(tmp_path):
    files = tiny_files(tmp_path, 'gfl')
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match='reused_teacher_head_idx is 3'):
        MODELS.build(distiller_config(files, 'crosskd', idx=3).model)
    with pytest.raises(ValueError, match='reused_teacher_head_idx'):
        MODELS.build(distiller_config(files, 'crosskd', idx=0).model)
    cfg = distiller_config(files, 'crosskd')
    cfg.model.teacher = dict(config=copy.deepcopy(cfg.model.student),
                             checkpoint=None)
    cfg.model.teacher.config.bbox_head.feat_channels = 32
    with pytest.raises(ValueError, match='feat_channels'):
        MODELS.build(cfg.model)


def test_a_head_of_another_type_fails_at_build(tmp_path):
    files = tiny_files(tmp_path, 'atss')
    init_default_scope('mmdet')
    with pytest.raises(TypeError, match=r"model\.pairings\.cross\.type: "
                       r"CrossKDRetinaPairing .* RetinaHead.*"
                       r"type='mmkd\.CrossKDATSSPairing'"):
        MODELS.build(distiller_config(files, 'crosskd_retinanet').model)
    with pytest.raises(ValueError, match='reused_teacher_head_idx is 3'):
        MODELS.build(distiller_config(files, 'crosskd_atss', idx=3).model)
