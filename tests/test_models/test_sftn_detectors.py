"""SFTN on tiny GFL detectors: the dense KL against a hand computation,
which transforms each branch has, where the branch losses send gradients,
build-time checks, and training and export through the real Runner."""
import copy
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmkd.models import SFTNTeacher
from mmkd.models.sftn.det_branch import dense_branch_kl
from tiny_setups import gfl_setup, run_script

PLAIN_PREDICT = """
import sys, torch
from mmdet.apis import inference_detector, init_detector
model = init_detector(sys.argv[1], sys.argv[2], device='cpu')
result = inference_detector(model, sys.argv[3])
assert not any(m.split('.')[0] == 'mmkd' for m in sys.modules), 'mmkd imported'
torch.save(result.pred_instances.scores, sys.argv[4])
"""


@pytest.fixture(scope='module')
def gfl_files(tmp_path_factory):
    return gfl_setup(str(tmp_path_factory.mktemp('sftn_gfl')))


def build(files, **kwargs):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    kwargs.setdefault('student', files['student'])
    model = SFTNTeacher(teacher=files['teacher'], **kwargs)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def model(gfl_files):
    return build(gfl_files, lambda_kl=2.0, lambda_ce=0.5, temperature=2.0)


def test_dense_kl_by_hand(model):
    head = model.teacher.bbox_head  # GFL: 3 classes, 17 bins per side
    gen = torch.Generator().manual_seed(0)
    bins = head.reg_max + 1
    cls_r, cls_t = (torch.randn(1, 3, 2, 1, generator=gen) for _ in 'rt')
    box_r, box_t = (torch.randn(1, 4 * bins, 2, 1, generator=gen)
                    for _ in 'rt')
    T = 2.0
    total = 0.
    for y in range(2):  # positions
        for c in range(3):  # classes: Bernoulli KL of sigmoid(logit / T)
            p = torch.sigmoid(cls_t[0, c, y, 0] / T)
            q = torch.sigmoid(cls_r[0, c, y, 0] / T)
            total += p * math.log(p / q) + (1 - p) * math.log((1 - p) /
                                                              (1 - q))
        for side in range(4):  # softmax KL over each side's bins
            p = torch.softmax(box_t[0, side * bins:(side + 1) * bins, y, 0] /
                              T, 0)
            q = torch.softmax(box_r[0, side * bins:(side + 1) * bins, y, 0] /
                              T, 0)
            total += (p * (p / q).log()).sum()
    ours = dense_branch_kl(head, ([cls_r], [box_r]), ([cls_t], [box_t]), T)
    torch.testing.assert_close(ours, T * T * total / 2)


def batch(files, n=2):
    cfg = Config.fromfile(files['student'])
    init_default_scope('mmdet')
    loader = Runner.build_dataloader(cfg.train_dataloader)
    return next(iter(loader))


def test_branches_and_their_transforms(model):
    assert list(model.branches) == ['branch1', 'branch2', 'branch3']
    # the FPN reads stages 2-4: a branch after stage 3 also transforms the
    # teacher's stage 2, as it has no student stage 2 of its own
    transforms = {name: sorted(int(i) for i in branch.transforms)
                  for name, branch in model.branches.items()}
    assert transforms == dict(branch1=[0], branch2=[1], branch3=[1, 2])
    assert list(model.branches['branch3'].backbone) == ['layer4']
    assert model.read_stages == [0, 1, 2]


def test_losses_are_the_weighted_terms(model, gfl_files):
    data = model.data_preprocessor(batch(gfl_files), True)
    inputs, samples = data['inputs'], data['data_samples']
    losses = model.loss(inputs, samples)
    for name in ('branch1', 'branch2', 'branch3'):
        assert {f'{name}.loss_cls', f'{name}.loss_bbox', f'{name}.loss_dfl',
                f'{name}.loss_kl'} <= set(losses)
    # the KL and the task losses, recomputed from the parts
    from mmkd.models.sftn.det_branch import detector_loss
    with torch.no_grad():
        feats = model.teacher.backbone(inputs)
        stages = dict(enumerate(feats))
        plain_t, outs_t = detector_loss(model.teacher, feats, samples)
        branch = model.branches['branch3']
        plain_r, outs_r = branch.loss(stages, samples)
    kl = dense_branch_kl(model.teacher.bbox_head, outs_r, outs_t, 2.0)
    torch.testing.assert_close(losses['branch3.loss_kl'].detach(), 2.0 * kl)
    torch.testing.assert_close(
        sum(losses['branch3.loss_cls']).detach(),
        0.5 * sum(plain_r['loss_cls']))
    torch.testing.assert_close(
        sum(losses['loss_cls']).detach(), sum(plain_t['loss_cls']))


def gradients(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {n: p.grad for n, p in model.named_parameters()}


def reached(grads, prefix):
    return any(g is not None and g.abs().sum() > 0
               for n, g in grads.items() if n.startswith(prefix))


def test_branch_losses_reach_the_teacher_before_the_branch(model, gfl_files):
    data = model.data_preprocessor(batch(gfl_files), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    task = gradients(model, sum(losses['branch3.loss_cls']) +
                     sum(losses['branch3.loss_dfl']))
    for prefix in ('teacher.backbone.layer1', 'teacher.backbone.layer2',
                   'teacher.backbone.layer3', 'branches.branch3.transforms.1',
                   'branches.branch3.transforms.2',
                   'branches.branch3.backbone.layer4', 'branches.branch3.neck',
                   'branches.branch3.bbox_head'):
        assert reached(task, prefix), prefix
    for prefix in ('teacher.backbone.layer4', 'teacher.neck',
                   'teacher.bbox_head', 'branches.branch1',
                   'branches.branch2'):
        assert not reached(task, prefix), prefix
    kl = gradients(model, losses['branch3.loss_kl'])
    for prefix in ('teacher.backbone.layer4', 'teacher.neck',
                   'teacher.bbox_head', 'branches.branch3.bbox_head'):
        assert reached(kl, prefix), prefix


def test_mismatched_students_fail_at_build(gfl_files):
    student = Config.fromfile(gfl_files['student']).model
    student.bbox_head.num_classes = 5
    with pytest.raises(ValueError, match=r'model.student.bbox_head: the '
                       'student predicts 5 class scores and the teacher 3'):
        build(gfl_files, student=student)
    student = Config.fromfile(gfl_files['student']).model
    student.bbox_head.reg_max = 8
    with pytest.raises(ValueError, match='model.student.bbox_head.reg_max'):
        build(gfl_files, student=student)
    with pytest.raises(ValueError, match='model.branch_points'):
        build(gfl_files, branch_points=(4, ))


def test_faster_rcnn_branches_run_their_roi_head_on_teacher_rois(det_files):
    """Two-stage: a branch runs the student's later stages, FPN and RoI head
    (no RPN of its own) on the RoIs the teacher's RPN proposed and its RoI
    head sampled, with their targets; the KL is on the RoI class logits."""
    from mmkd.models import student_branch_kl
    from mmkd.models.sftn.det_branch import two_stage_loss
    model = build(det_files, lambda_kl=2.0, lambda_ce=0.5)
    # Faster R-CNN's FPN reads every stage: transforms below each point
    assert {n: sorted(int(i) for i in b.transforms)
            for n, b in model.branches.items()} == dict(
                branch1=[0], branch2=[0, 1], branch3=[0, 1, 2])
    assert not hasattr(model.branches['branch1'], 'rpn_head')
    data = model.data_preprocessor(batch(det_files), True)
    inputs, samples = data['inputs'], data['data_samples']
    torch.manual_seed(5)
    losses = model.loss(inputs, samples)
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
            'branch2.loss_cls', 'branch2.loss_bbox', 'branch2.loss_kl'} <= \
        set(losses)
    torch.manual_seed(5)  # the same proposals and samples
    with torch.no_grad():
        feats = model.teacher.backbone(inputs)
        plain_t, sampling, cls_t = two_stage_loss(model.teacher, feats,
                                                  samples)
        plain_r, cls_r = model.branches['branch2'].roi_loss(
            dict(enumerate(feats)), sampling)
    torch.testing.assert_close(losses['branch2.loss_kl'].detach(),
                               2.0 * student_branch_kl(cls_r, cls_t))
    torch.testing.assert_close(losses['branch2.loss_cls'].detach(),
                               0.5 * plain_r['loss_cls'])
    torch.testing.assert_close(losses['loss_cls'].detach(),
                               plain_t['loss_cls'])
    task = gradients(model, losses['branch2.loss_cls'])
    for prefix in ('teacher.backbone.layer1', 'teacher.backbone.layer2',
                   'branches.branch2.transforms.0',
                   'branches.branch2.backbone.layer3',
                   'branches.branch2.roi_head'):
        assert reached(task, prefix), prefix
    for prefix in ('teacher.backbone.layer3', 'teacher.neck',
                   'teacher.rpn_head', 'teacher.roi_head',
                   'branches.branch1'):
        assert not reached(task, prefix), prefix
    kl = gradients(model, losses['branch2.loss_kl'])
    assert reached(kl, 'teacher.roi_head')


def test_detector_kinds_must_match(det_files, gfl_files):
    with pytest.raises(ValueError, match='model.student: the teacher is a '
                       'two-stage detector and the student a GFL'):
        build(det_files, student=gfl_files['student'])


def test_training_and_plain_mmdet_export(gfl_files, tmp_path):
    cfg = Config.fromfile(gfl_files['teacher'])
    cfg.model = dict(type='mmkd.SFTNTeacher', teacher=gfl_files['teacher'],
                     student=gfl_files['student'])
    cfg.custom_imports = dict(imports=['mmkd'])
    cfg.custom_hooks = [dict(type='mmkd.ExactResumeHook'),
                        dict(type='mmkd.SFTNTeacherExportHook')]
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    assert runner.message_hub.get_scalar(
        'train/branch1.loss_kl').current() > 0
    state = torch.load(osp.join(tmp_path, 'teacher.pth'))['state_dict']
    assert state.keys() == runner.model.teacher.state_dict().keys()
    image = osp.join(gfl_files['root'], 'data', 'images', 'val_9.png')
    script = osp.join(tmp_path, 'plain_predict.py')
    with open(script, 'w') as f:
        f.write(PLAIN_PREDICT)
    out = osp.join(tmp_path, 'plain.pth')
    run_script(script, osp.join(tmp_path, 'teacher_config.py'),
               osp.join(tmp_path, 'teacher.pth'), image, out, cwd=tmp_path,
               env=dict(PYTHONPATH=''))
    from mmdet.apis import inference_detector
    runner.model.cfg = runner.cfg
    ours = inference_detector(runner.model, image).pred_instances.scores
    torch.testing.assert_close(ours, torch.load(out), rtol=0, atol=0)
