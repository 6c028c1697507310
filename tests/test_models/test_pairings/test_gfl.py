"""GFLPairing + LDLoss: parity with mmdet's LDHead, VLR, Runner, errors."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.testing import assert_close

from mmkd.models.pairings.gfl import valuable_localization_region
from tiny_setups import gfl_setup

LD = dict(
    type='mmkd.LDLoss',
    student='ld.corners',
    teacher='ld.corners',
    inputs=dict(weight='ld.weights'))
LD_VLR = dict(
    type='mmkd.LDLoss',
    student='ld.vlr_corners',
    teacher='ld.vlr_corners',
    inputs=dict(weight='ld.vlr_weights'),
    avg_factor=16.0)
KD_CLS = dict(
    type='mmkd.LDLoss',
    student='ld.cls',
    teacher='ld.cls',
    inputs=dict(weight='ld.cls_weights'),
    temperature=2,
    avg_factor=1.0,
    loss_weight=10.0)


@pytest.fixture(scope='module')
def gfl_files(tmp_path_factory):
    return gfl_setup(str(tmp_path_factory.mktemp('gfl')))


def ld_config(files, vlr=False, **losses):
    cfg = Config.fromfile(files['student'])
    cfg.model = dict(
        type='mmkd.SingleTeacherDistiller',
        student=cfg.model,
        teacher=dict(config=files['teacher'], checkpoint=files['ckpt']),
        pairings=dict(ld=dict(type='mmkd.GFLPairing', vlr=vlr)),
        losses=losses or dict(ld=LD))
    cfg.custom_imports = dict(imports=['mmkd'])
    return cfg


def build(model_cfg, seed=0):
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    return MODELS.build(model_cfg)


@pytest.fixture(scope='module')
def batch(gfl_files):
    cfg = ld_config(gfl_files)
    init_default_scope('mmdet')
    return next(iter(Runner.build_dataloader(cfg.train_dataloader)))


def test_ld_equals_mmdet_ld_head(gfl_files, batch):
    distiller = build(ld_config(gfl_files).model).train()
    data = distiller.data_preprocessor(copy.deepcopy(batch), True)
    # mmdet's recipe on the same student weights, teacher and batch
    cfg = Config.fromfile(gfl_files['student']).model
    cfg.update(
        type='KnowledgeDistillationSingleStageDetector',
        teacher_config=gfl_files['teacher'],
        teacher_ckpt=gfl_files['ckpt'])
    cfg.bbox_head.update(
        type='LDHead',
        loss_ld=dict(
            type='KnowledgeDistillationKLDivLoss', loss_weight=0.25, T=10))
    mmdet = build(cfg, seed=1)
    mmdet.train()  # returns None; the teacher goes to eval
    mmdet.load_state_dict(distiller.student.state_dict())
    ours = distiller.loss(data['inputs'], data['data_samples'])
    theirs = mmdet.loss(data['inputs'], data['data_samples'])
    assert ours['distill.ld'] > 0
    assert_close(
        ours['distill.ld'], sum(theirs['loss_ld']), rtol=1e-5, atol=1e-8)
    # the hooks changed nothing in the student's own losses
    for key in ('loss_cls', 'loss_bbox', 'loss_dfl'):
        assert_close(sum(ours[key]), sum(theirs[key]))


def test_gradients_reach_the_student_box_branch_only(gfl_files, batch):
    distiller = build(ld_config(gfl_files).model).train()
    data = distiller.data_preprocessor(copy.deepcopy(batch), True)
    _, _, records_t, paired = distiller.collect(data['inputs'],
                                                data['data_samples'])
    corners_s, corners_t = paired['ld.corners']
    labels = torch.cat(distiller.pairings['ld']._seen['labels'])
    num_pos = int((labels < 3).sum())
    assert num_pos > 0 and corners_s.shape == (4 * num_pos, 17)
    assert corners_t.shape == corners_s.shape
    assert not corners_t.requires_grad
    assert not any(t.requires_grad
                   for t in records_t.values() if isinstance(t, torch.Tensor))
    weights = paired['ld.weights']
    assert weights.shape == (4 * num_pos, ) and not weights.requires_grad
    assert ((weights > 0) & (weights < 1)).all()
    head = distiller.student.bbox_head
    loss = distiller.distill_losses['ld'](corners_s, corners_t, weights)
    grad_reg, grad_cls = torch.autograd.grad(
        loss, [head.gfl_reg.weight, head.gfl_cls.weight], allow_unused=True)
    assert grad_reg.abs().sum() > 0
    assert grad_cls is None  # the class-score weights are detached
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_cls_records_average_each_level(gfl_files, batch):
    distiller = build(ld_config(gfl_files).model).train()
    data = distiller.data_preprocessor(copy.deepcopy(batch), True)
    _, _, _, paired = distiller.collect(data['inputs'], data['data_samples'])
    seen = distiller.pairings['ld']._seen
    per_level = [int((labels < 3).sum()) for labels in seen['labels']]
    cls_s, cls_t = paired['ld.cls']
    assert cls_s.shape == cls_t.shape == (sum(per_level), 3)
    # the official KD averages per level: each level's weights sum to 1
    sums = paired['ld.cls_weights'].split(per_level)
    assert_close(
        torch.stack([s.sum() for s in sums if len(s)]),
        torch.ones(sum(n > 0 for n in per_level)))
    # the teacher's class logits at the positives, by hand
    with torch.no_grad():
        scores, _ = distiller.teacher._forward(data['inputs'])
    flat = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, 3) for s in scores])
    assert_close(cls_t, flat[torch.cat(seen['labels']) < 3])


def test_valuable_localization_region_by_hand():
    gt = torch.tensor([[0., 0., 10., 10.]])
    anchors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.],
                            [20., 20., 30., 30.]])
    # IoUs 1, 1/2, 0: thr = mean + std = 1/2 + 1/2 = 1. DIoUs: 1 (not
    # below thr), 1/2 - 2.5^2 / (10^2 + 10^2) = 0.46875 and < 0
    assert_close(
        valuable_localization_region(anchors, [3], gt, topk=3),
        torch.tensor([0., 0.5, 0.]))
    # the lower bound alpha * thr just below and just above 0.46875
    assert_close(
        valuable_localization_region(anchors, [3], gt, topk=3, alpha=0.468),
        torch.tensor([0., 0.5, 0.]))
    assert_close(
        valuable_localization_region(anchors, [3], gt, topk=3, alpha=0.469),
        torch.zeros(3))
    # topk 1 per level, levels (0, 1) and (2, ): the candidates are anchors
    # 0 and 2, thr = 1/2 + std(1, 0) = 1.2071: the first anchor joins
    assert_close(
        valuable_localization_region(anchors, [2, 1], gt, topk=1),
        torch.tensor([1., 0.5, 0.]))
    # no ground truth: no region
    assert_close(
        valuable_localization_region(anchors, [3], gt[:0]), torch.zeros(3))


def test_vlr_records_and_all_losses(gfl_files, batch):
    cfg = ld_config(
        gfl_files, vlr=True, ld=LD, ld_valuable=LD_VLR, kd_cls=KD_CLS)
    distiller = build(cfg.model).train()
    data = distiller.data_preprocessor(copy.deepcopy(batch), True)
    _, _, _, paired = distiller.collect(data['inputs'], data['data_samples'])
    vlr_s, vlr_t = paired['ld.vlr_corners']
    weights = paired['ld.vlr_weights']
    assert len(weights) > 0 and vlr_s.shape == vlr_t.shape
    assert vlr_s.shape == (len(weights), 17) and vlr_s.requires_grad
    assert ((weights > 0) & (weights <= 1)).all()
    losses = distiller.loss(data['inputs'], data['data_samples'])
    for name in ('ld', 'ld_valuable', 'kd_cls'):
        assert torch.isfinite(losses[f'distill.{name}'])
        assert losses[f'distill.{name}'] > 0


def test_runner_trains_and_validates(gfl_files, tmp_path):
    cfg = ld_config(
        gfl_files, vlr=True, ld=LD, ld_valuable=LD_VLR, kd_cls=KD_CLS)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = 3
    runner = Runner.from_cfg(cfg)
    before = copy.deepcopy(runner.model.student.bbox_head.gfl_reg.weight)
    runner.train()
    hub = runner.message_hub
    assert 'val/coco/bbox_mAP' in hub.log_scalars
    assert hub.get_scalar('val/coco/bbox_mAP').current() >= 0
    for name in ('ld', 'ld_valuable', 'kd_cls'):
        assert hub.get_scalar(f'train/distill.{name}').current() > 0
    after = runner.model.student.bbox_head.gfl_reg.weight
    assert not torch.equal(before, after)


def test_heads_without_box_distributions_fail_at_build(gfl_files):
    cfg = ld_config(gfl_files)
    cfg.model.student.update(type='RetinaNet', train_cfg=None)
    cfg.model.student.bbox_head = dict(
        type='RetinaHead',
        num_classes=3,
        in_channels=16,
        feat_channels=16,
        stacked_convs=1,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'))
    with pytest.raises(TypeError, match=r'model\.pairings\.ld: .*RetinaHead'):
        build(cfg.model)


def test_mismatched_heads_fail_at_build(gfl_files):
    cfg = ld_config(gfl_files)
    cfg.model.student.bbox_head.reg_max = 8
    with pytest.raises(ValueError, match=r'model\.pairings\.ld: .*reg_max'):
        build(cfg.model)
    cfg = ld_config(gfl_files, ld=LD_VLR)  # vlr=False: no VLR records
    with pytest.raises(KeyError, match="no paired record 'vlr_corners'"):
        build(cfg.model)
