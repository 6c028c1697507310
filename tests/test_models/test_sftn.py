"""SFTN on tiny PSPNets: the KL against a hand computation, where the
branch losses send gradients, build-time checks, and training, resume and
export through the real mmengine Runner."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmkd.models import SFTNTeacher, student_branch_kl
from tiny_setups import run_script, save_teacher

PLAIN_PREDICT = """
import sys, torch
from mmseg.apis import inference_model, init_model
model = init_model(sys.argv[1], sys.argv[2], device='cpu')
result = inference_model(model, sys.argv[3])
assert not any(m.split('.')[0] == 'mmkd' for m in sys.modules), 'mmkd imported'
torch.save(result.seg_logits.data, sys.argv[4])
"""


def softmax(logits, T):
    exps = [math.exp(z / T) for z in logits]
    return [e / sum(exps) for e in exps]


def test_kl_equals_a_hand_computation():
    # three pixels of three classes; the third pixel is not labelled
    t = [[2., 0., -2.], [0., 1., 0.], [5., 5., 5.]]
    r = [[0., 0., 0.], [1., 0., 0.], [-5., 0., 5.]]
    T = 2.0
    per_pixel = []
    for z_t, z_r in zip(t, r):
        p_t, p_r = softmax(z_t, T), softmax(z_r, T)
        per_pixel.append(
            sum(a * math.log(a / b) for a, b in zip(p_t, p_r)))
    logits_t = torch.tensor(t).T.reshape(1, 3, 1, 3).requires_grad_()
    logits_r = torch.tensor(r).T.reshape(1, 3, 1, 3).requires_grad_()
    valid = torch.tensor([[[True, True, False]]])
    kl = student_branch_kl(logits_r, logits_t, T, valid)
    torch.testing.assert_close(
        kl, torch.tensor(T * T * (per_pixel[0] + per_pixel[1]) / 2))
    torch.testing.assert_close(
        student_branch_kl(logits_r, logits_t, T),
        torch.tensor(T * T * sum(per_pixel) / 3))
    kl.backward()
    # both sides are trained; the unlabelled pixel sends nothing
    for logits in (logits_t, logits_r):
        assert logits.grad[..., :2].abs().sum() > 0
        assert not logits.grad[..., 2].any()


def test_kl_without_labelled_pixels_is_zero():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    kl = student_branch_kl(logits, logits.flip(1), 1.0,
                           torch.zeros(1, 2, 2, dtype=torch.bool))
    assert kl.item() == 0
    kl.backward()
    assert not logits.grad.any()


def batch(seed=0, n=2, size=64):
    """Images and label maps (3 classes; the top rows unlabelled)."""
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        labels = torch.randint(0, 3, (1, size, size), generator=gen)
        labels[:, :10] = 255
        sample = SegDataSample(
            metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                          pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return torch.rand(n, 3, size, size, generator=gen), samples


def build(seg_files, **kwargs):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = SFTNTeacher(
        teacher=seg_files['teacher'], student=seg_files['student'], **kwargs)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def model(seg_files):
    return build(seg_files, lambda_kl=3.0, lambda_ce=0.5, temperature=2.0)


def test_losses_are_the_weighted_terms(model):
    inputs, samples = batch()
    model.eval()  # no dropout: loss() and seg_logits() see the same maps
    try:
        losses = model.loss(inputs, samples)
        logits = model.seg_logits(inputs)
    finally:
        model.train()
    assert set(logits) == {'teacher', 'branch1', 'branch2', 'branch3'}
    labels = torch.stack([s.gt_sem_seg.data for s in samples]).float()
    labels = F.interpolate(labels, logits['teacher'].shape[2:])[:, 0]
    for name in ('branch1', 'branch2', 'branch3'):
        kl = student_branch_kl(logits[name], logits['teacher'], 2.0,
                               labels != 255)
        torch.testing.assert_close(losses[f'{name}.loss_kl'], 3.0 * kl)
        ce = model.branches[name].decode_head.loss_by_feat(
            logits[name], samples)['loss_ce']
        torch.testing.assert_close(losses[f'{name}.decode.loss_ce'],
                                   0.5 * ce)
    ce = model.teacher.decode_head.loss_by_feat(logits['teacher'],
                                                samples)['loss_ce']
    torch.testing.assert_close(losses['decode.loss_ce'], ce)
    # an auxiliary head joins the branches that compute its stage (3)
    assert 'branch2.aux.loss_ce' in losses
    assert 'branch3.aux.loss_ce' not in losses


def gradients(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {n: p.grad for n, p in model.named_parameters()}


def reached(grads, prefix):
    return any(
        g is not None and g.abs().sum() > 0 for n, g in grads.items()
        if n.startswith(prefix))


def test_branch_losses_reach_the_teacher_before_the_branch(model):
    losses = model.loss(*batch())
    ce = gradients(model, losses['branch2.decode.loss_ce'] +
                   losses['branch2.aux.loss_ce'])
    for prefix in ('teacher.backbone.stem', 'teacher.backbone.layer1',
                   'teacher.backbone.layer2', 'branches.branch2.transform',
                   'branches.branch2.backbone.layer3',
                   'branches.branch2.backbone.layer4',
                   'branches.branch2.decode_head',
                   'branches.branch2.auxiliary_heads.aux'):
        assert reached(ce, prefix), prefix
    for prefix in ('teacher.backbone.layer3', 'teacher.backbone.layer4',
                   'teacher.decode_head', 'teacher.auxiliary_head',
                   'branches.branch1', 'branches.branch3'):
        assert not reached(ce, prefix), prefix
    # the KL trains the whole teacher too, and the branch's path to q_R
    kl = gradients(model, losses['branch2.loss_kl'])
    for prefix in ('teacher.backbone.layer1', 'teacher.backbone.layer4',
                   'teacher.decode_head', 'branches.branch2.transform',
                   'branches.branch2.decode_head'):
        assert reached(kl, prefix), prefix
    for prefix in ('teacher.auxiliary_head', 'branches.branch2.auxiliary',
                   'branches.branch1', 'branches.branch3'):
        assert not reached(kl, prefix), prefix
    teacher = gradients(model,
                        losses['decode.loss_ce'] + losses['aux.loss_ce'])
    assert reached(teacher, 'teacher.') and not reached(teacher, 'branches')


def test_branches_start_as_the_initialised_student(seg_files, tmp_path):
    """Each branch copies the student's stages and heads as its init_cfg
    (here a whole-model checkpoint) leaves them."""
    ckpt = save_teacher(seg_files['student'], str(tmp_path / 's.pth'), 3)
    student = Config.fromfile(seg_files['student']).model
    student.init_cfg = dict(type='Pretrained', checkpoint=ckpt)
    model = build(dict(seg_files, student=student), branch_points=(2, ))
    branch = model.branches['branch2']
    assert list(branch.backbone) == ['layer3', 'layer4']
    conv = branch.transform.conv  # teacher width 16 x 2 to student 8 x 2
    assert (conv.in_channels, conv.out_channels) == (32, 16)
    saved = torch.load(ckpt)['state_dict']
    for prefix, part in (('backbone.', branch.backbone),
                         ('decode_head.', branch.decode_head),
                         ('auxiliary_head.', branch.auxiliary_heads.aux)):
        for name, value in part.state_dict().items():
            torch.testing.assert_close(
                value, saved[prefix + name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize('points', [(0, ), (4, ), (1, 1), 2, (), ('1', )])
def test_bad_branch_points_fail_at_build(seg_files, points):
    with pytest.raises(ValueError,
                       match=r'model\.branch_points=.*from 1 to 3'):
        build(seg_files, branch_points=points)


def student_dict(seg_files, **backbone):
    cfg = Config.fromfile(seg_files['student']).model
    cfg.backbone.update(backbone)
    return cfg


def test_student_at_another_resolution_fails_at_build(seg_files):
    student = student_dict(
        seg_files, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    with pytest.raises(ValueError, match=r'model\.branch_points: after '
                       r'stage 3 the teacher gives \(8, 8\) maps and the '
                       r'student \(4, 4\)'):
        build(dict(seg_files, student=student))
    assert list(
        build(dict(seg_files, student=student),
              branch_points=(1, 2)).branches) == ['branch1', 'branch2']


def test_student_with_other_stages_fails_at_build(seg_files):
    student = student_dict(
        seg_files, num_stages=3, strides=(1, 2, 1), dilations=(1, 1, 2),
        out_indices=(0, 1, 2))
    student.decode_head.update(in_index=2, in_channels=32)
    student.auxiliary_head.update(in_index=1, in_channels=16)
    with pytest.raises(ValueError,
                       match=r"model\.student: its backbone has 3 stages "
                       r"and the teacher's 4"):
        build(dict(seg_files, student=student))


def test_students_branches_cannot_copy_fail_at_build(seg_files):
    student = student_dict(seg_files)
    student.decode_head.update(num_classes=4)
    with pytest.raises(ValueError, match=r'model\.student: the student '
                       'predicts 4 classes and the teacher 3'):
        build(dict(seg_files, student=student))
    student = student_dict(seg_files)
    student.decode_head.update(in_index=1, in_channels=16)
    with pytest.raises(ValueError, match=r"model\.branch_points: the "
                       "student's decode head reads backbone stage 2, which "
                       'a branch after stage 3 does not compute'):
        build(dict(seg_files, student=student))
    assert list(build(dict(seg_files, student=student),
                      branch_points=(1, 2)).branches) == [
                          'branch1', 'branch2'
                      ]


def test_unknown_keys_and_bad_weights_fail_at_build(seg_files):
    with pytest.raises(TypeError, match=r"unknown keys \['lamda_kl'\].*"
                       "'lambda_kl'"):
        build(seg_files, lamda_kl=3)
    with pytest.raises(ValueError, match=r'model\.lambda_ce=-1'):
        build(seg_files, lambda_ce=-1)
    with pytest.raises(ValueError, match=r'model\.temperature=0'):
        build(seg_files, temperature=0)
    with pytest.raises(TypeError, match=r'model\.transform=.*kernal_size'):
        build(seg_files, transform=dict(kernal_size=1))


def sftn_config(seg_files, work_dir, max_iters):
    cfg = Config.fromfile(seg_files['teacher'])
    cfg.model = dict(
        type='mmkd.SFTNTeacher',
        teacher=seg_files['teacher'],
        student=seg_files['student'])
    cfg.custom_imports = dict(imports=['mmkd'])
    cfg.custom_hooks = [
        dict(type='mmkd.ExactResumeHook'),
        dict(type='mmkd.SFTNTeacherExportHook')
    ]
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    return cfg


def train(cfg, resume=False):
    cfg = copy.deepcopy(cfg)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def trained(seg_files, tmp_path_factory):
    return train(sftn_config(seg_files, tmp_path_factory.mktemp('sftn'), 4))


def test_training_validates_the_teacher_and_exports_it(trained, seg_files):
    hub = trained.message_hub
    assert 'mIoU' in hub.log_scalars or 'val/mIoU' in hub.log_scalars
    assert hub.get_scalar('train/branch1.loss_kl').current() > 0
    work_dir = trained.work_dir
    before = torch.load(osp.join(work_dir, 'iter_2.pth'))['state_dict']
    after = trained.model.state_dict()
    for key in ('teacher.backbone.layer1.0.conv1.weight',
                'branches.branch1.transform.conv.weight',
                'branches.branch3.decode_head.conv_seg.weight'):
        assert not torch.equal(before[key], after[key]), key
    state = torch.load(osp.join(work_dir, 'teacher.pth'))['state_dict']
    assert state.keys() == trained.model.teacher.state_dict().keys()
    image = osp.join(seg_files['root'], 'data', 'img_dir', 'val', '0.png')
    script = osp.join(work_dir, 'plain_predict.py')
    with open(script, 'w') as f:
        f.write(PLAIN_PREDICT)
    out = osp.join(work_dir, 'plain.pth')
    run_script(script, osp.join(work_dir, 'teacher_config.py'),
               osp.join(work_dir, 'teacher.pth'), image, out, cwd=work_dir,
               env=dict(PYTHONPATH=''))
    from mmseg.apis import inference_model
    trained.model.cfg = trained.cfg
    ours = inference_model(trained.model, image).seg_logits.data
    torch.testing.assert_close(ours, torch.load(out), rtol=0, atol=0)


def test_resume_equals_an_uninterrupted_run(trained, seg_files, tmp_path):
    cfg = sftn_config(seg_files, tmp_path, 2)
    train(cfg)
    cfg.train_cfg.max_iters = 4
    resumed = train(cfg, resume=True)
    assert resumed.iter == 4
    a, b = trained.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(
            a[key], b[key], rtol=0, atol=0, msg=f'{key} differs after resume')
