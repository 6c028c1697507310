import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from mmkd.models import ConvAdapter, SingleTeacherDistiller
from tiny_setups import distill_config


def build(cfg):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def first_batch(cfg, model):
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    return model.data_preprocessor(next(iter(loader)), True)


@pytest.fixture(scope='module')
def det(det_files):
    cfg = distill_config(det_files)
    model = build(cfg)
    return cfg, model, first_batch(cfg, model)


def test_teacher_is_frozen_and_outside_the_module_tree(det):
    _, model, _ = det
    assert isinstance(model, SingleTeacherDistiller)
    teacher = model.teacher
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    model.train()
    assert not teacher.training
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not teacher_params & {id(p) for p in model.parameters()}
    keys = model.state_dict().keys()
    assert not any(k.startswith(('teacher', '_teacher')) for k in keys)
    assert any(k.startswith('adapters.hint.') for k in keys)


def test_teacher_weights_come_from_its_checkpoint(det, det_files):
    _, model, _ = det
    saved = torch.load(det_files['ckpt'])['state_dict']
    for key, value in model.teacher.state_dict().items():
        torch.testing.assert_close(value, saved[key])


def test_adapter_per_fpn_level_from_probe(det):
    _, model, _ = det
    adapter = model.adapters['hint']
    assert isinstance(adapter, ConvAdapter)
    # student FPN has 16 channels, teacher FPN 32, 5 levels
    assert [(c.in_channels, c.out_channels) for c in adapter.convs] == \
        [(16, 32)] * 5


def test_loss_gradients_reach_student_and_adapter_never_teacher(det):
    _, model, data = det
    model.train()
    model.zero_grad()
    losses = model.loss(**data)
    assert 'distill.hint' in losses and 'loss_rpn_cls' in losses
    assert losses['distill.hint'] > 0
    total, log_vars = model.parse_losses(losses)
    # distill.hint has no 'loss' in its name and is still back-propagated
    expected = sum(v for k, v in log_vars.items()
                   if 'loss' in k and k != 'loss') + log_vars['distill.hint']
    torch.testing.assert_close(total, expected)
    losses['distill.hint'].backward()
    assert model.adapters['hint'].convs[0].weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    # the hint does not reach the student's heads
    assert model.student.roi_head.bbox_head.fc_cls.weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())


def test_teacher_runs_only_as_far_as_the_losses_need(det):
    _, model, data = det
    calls = []
    teacher = model.teacher
    # pre-hooks see every call, even one cut short after the neck
    handles = [
        getattr(teacher, name).register_forward_pre_hook(
            lambda *_, name=name: calls.append(name))
        for name in ('backbone', 'neck', 'rpn_head', 'roi_head')
    ]
    try:
        model.loss(**data)
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ['backbone', 'neck']
    # and the teacher's tensors carry no graph
    records = model._teacher_records(data['inputs'], data['data_samples'])
    assert all(not f.requires_grad for f in records['neck'])


def test_zero_weight_skips_teacher_and_gives_zero(det):
    _, model, data = det
    calls = []
    handle = model.teacher.backbone.register_forward_hook(
        lambda *_: calls.append(1))
    model.loss_multipliers['hint'] = 0.0
    try:
        losses = model.loss(**data)
    finally:
        model.loss_multipliers['hint'] = 1.0
        handle.remove()
    assert calls == []
    assert losses['distill.hint'].item() == 0
    losses['distill.hint'].backward()  # still tied to the adapter (DDP)
    assert model.adapters['hint'].convs[0].weight.grad is not None


def test_predict_is_the_students(det):
    _, model, data = det
    model.eval()
    with torch.no_grad():
        ours = model.predict(data['inputs'],
                             copy.deepcopy(data['data_samples']))
        theirs = model.student.predict(data['inputs'],
                                       copy.deepcopy(data['data_samples']))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.pred_instances.bboxes,
                                   b.pred_instances.bboxes)
    model.train()


def test_different_normalisation_is_converted(det_files):
    cfg = distill_config(det_files)
    teacher = Config.fromfile(det_files['teacher'])
    teacher.model.data_preprocessor.update(
        mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=False)
    cfg.model.teacher.config = teacher.model
    model = build(cfg)
    inputs = torch.rand(1, 3, 8, 8) * 255
    pre_s = model.student.data_preprocessor
    normed = (inputs.flip(1) - pre_s.mean) / pre_s.std  # student: BGR->RGB
    torch.testing.assert_close(
        model._to_teacher_inputs(normed), inputs / 255, rtol=1e-4, atol=1e-5)


# ---- bad input fails at build time, naming the key and what is valid ----


def test_missing_teacher_checkpoint(det_files):
    cfg = distill_config(det_files)
    cfg.model.teacher.checkpoint = '/nonexistent/teacher.pth'
    with pytest.raises(
            FileNotFoundError,
            match=r"model.teacher.checkpoint: no file at "
            r"'/nonexistent/teacher.pth'"):
        build(cfg)


def test_checkpoint_that_does_not_fit(det_files, tmp_path):
    cfg = distill_config(det_files)
    student = build(Config.fromfile(det_files['student']))
    wrong = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=student.state_dict()), wrong)
    cfg.model.teacher.checkpoint = wrong
    with pytest.raises(RuntimeError) as err:
        build(cfg)
    msg = str(err.value)
    assert 'model.teacher.checkpoint' in msg and 'shape mismatches' in msg
    assert 'backbone.conv1.weight: checkpoint (8, 3, 7, 7) vs model ' \
        '(16, 3, 7, 7)' in msg
    assert 'teacher.strict=False' in msg
    cfg.model.teacher.strict = False
    with pytest.warns(UserWarning, match='loading what fits'):
        build(cfg)


def test_tap_that_does_not_exist(det_files):
    cfg = distill_config(det_files, tap='nek')
    with pytest.raises(
            KeyError,
            match=r"model.losses.hint.student: .*no "
            r"module named 'nek'; close names: \['neck'"):
        build(cfg)
    cfg = distill_config(det_files)
    cfg.model.losses.hint.teacher = 'backbone.layer5'
    with pytest.raises(
            KeyError,
            match=r'model.losses.hint.teacher.*'
            r"backbone.layer5.*close names: \['backbone.layer"):
        build(cfg)


def test_unknown_loss_type(det_files):
    cfg = distill_config(det_files)
    cfg.model.losses.hint.type = 'mmkd.FeatureHintLos'
    with pytest.raises(
            KeyError,
            match=r"model.losses.hint.type: "
            r"'mmkd.FeatureHintLos' is not a registered loss; "
            r"mmkd has \[.*'FeatureHintLoss'"):
        build(cfg)


def test_channel_mismatch_without_adapter(det_files):
    cfg = distill_config(det_files, adapter=False)
    with pytest.raises(
            ValueError,
            match=r"model.losses.hint.adapter is False"
            r".*\[16, 16, 16, 16, 16\] channels.*\[32, 32, 32, 32,"
            r" 32\].*set adapter to 'auto' or True"):
        build(cfg)
    cfg = distill_config(det_files, adapter='sometimes')
    with pytest.raises(
            ValueError,
            match=r"adapter is 'sometimes'; valid "
            r"values are \('auto', True, False\)"):
        build(cfg)


def test_teacher_config_errors(det_files):
    cfg = distill_config(det_files)
    cfg.model.teacher = dict(cfg.model.teacher, ckpt='x.pth')
    with pytest.raises(
            KeyError,
            match=r"model.teacher: unknown keys "
            r"\['ckpt'\]; valid keys are \('config', "
            r"'checkpoint', 'strict', 'precision', 'fold_bn', "
            r"'channels_last', 'cuda_graph'\)"):
        build(cfg)
    cfg.model.teacher = dict(config='/nonexistent/teacher.py')
    with pytest.raises(
            FileNotFoundError, match=r"model.teacher.config: no config at"):
        build(cfg)
