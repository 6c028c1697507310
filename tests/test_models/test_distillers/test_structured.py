"""StructuredDistiller: alternating student and critic steps, ignore
masking, build-time checks."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from skd_fixtures import skd_files  # noqa: F401
from skd_fixtures import skd_config, skd_losses

from mmkd.models import StructuredDistiller


def build(cfg):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg.model))


def batch(cfg, model):
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    return model.data_preprocessor(next(iter(loader)), True)


def params(module):
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def moved(before, module):
    return {
        k
        for k, p in module.named_parameters()
        if not torch.equal(before[k], p.detach())
    }


@pytest.fixture(scope='module')
def skd(skd_files):  # noqa: F811
    cfg = skd_config(skd_files)
    model = build(cfg)
    assert isinstance(model, StructuredDistiller)
    return cfg, model, batch(cfg, model)


def test_student_step_and_critic_step_move_only_their_own_parameters(skd):
    cfg, model, data = skd
    model.train()
    wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    critic_ids = {id(p) for p in model.critic.parameters()}
    student_ids = {
        id(p)
        for group in wrappers['student'].optimizer.param_groups
        for p in group['params']
    }
    assert not student_ids & critic_ids
    assert {id(p) for p in model.student.parameters()} <= student_ids
    student, critic = params(model.student), params(model.critic)
    # the student's step: task + distillation losses, student optimizer
    losses = model.loss(**data)
    assert {'distill.pixel', 'distill.pair', 'distill.holistic'} <= set(losses)
    assert losses['distill.pixel'] > 0 and losses['distill.pair'] > 0
    parsed, _ = model.parse_losses(losses)
    wrappers['student'].update_params(parsed)
    assert moved(student, model.student)
    assert not moved(critic, model.critic)
    # the critic's step on the detached maps of that forward
    student = params(model.student)
    log_vars = model.train_critic(wrappers['critic'])
    assert torch.isfinite(log_vars['critic.loss'])
    # (attention projections wait for their gate, which starts at 0)
    assert {
        'score.weight', 'features.3.gamma', 'features.0.0.'
        'parametrizations.weight.original'
    } <= moved(critic, model.critic)
    assert not moved(student, model.student)
    assert all(p.grad is None or not p.grad.any()
               for p in model.student.parameters())


def test_train_step_alternates_and_logs_both(skd):
    cfg, model, _ = skd
    model.train()
    wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    data = next(iter(loader))
    student, critic = params(model.student), params(model.critic)
    log_vars = model.train_step(copy.deepcopy(data), wrappers)
    assert {'loss', 'distill.holistic', 'critic.loss'} <= set(log_vars)
    assert moved(student, model.student) and moved(critic, model.critic)
    # without a critic entry the step refuses to run
    single = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match='model.critic needs its own'):
        model.train_step(data, single)


def test_critic_steps_per_student_step(skd, skd_files):  # noqa: F811
    cfg, _, data = skd
    cfg = skd_config(skd_files, critic_steps=3)
    model = build(cfg)
    wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    model.loss(**data)
    model.train_critic(wrappers['critic'])
    state = wrappers['critic'].optimizer.state
    assert {int(s['step']) for s in state.values()} == {3}


def test_ignored_pixels_count_in_no_term(skd):
    _, model, data = skd
    model.train()
    samples = copy.deepcopy(data['data_samples'])
    for sample in samples:
        sample.gt_sem_seg.data[...] = 255  # all ignored (as padding is)
    model.zero_grad()
    losses = model.loss(data['inputs'], samples)
    assert float(losses['distill.pixel']) == 0
    assert float(losses['distill.pair']) == 0
    distill = sum(v for k, v in losses.items() if k.startswith('distill.'))
    distill.backward()
    assert all(p.grad is None or not p.grad.any()
               for p in model.student.parameters())
    # the critic sees zero maps on both sides: nothing to tell apart
    probs_s, probs_t, _ = model._critic_batch
    assert not probs_s.any() and not probs_t.any()


def test_tekap_wraps_pixel_wise_and_passes_the_labels(
        skd_files,  # noqa: F811
        skd):
    _, _, data = skd
    tekap = dict(
        type='mmkd.TeKAP',
        loss=dict(type='mmkd.PixelWiseKDLoss', loss_weight=10.0))
    cfg = skd_config(skd_files, losses=skd_losses(pixel=tekap))
    model = build(cfg)
    losses = model.loss(**data)
    assert losses['distill.pixel'] > 0
    samples = copy.deepcopy(data['data_samples'])
    for sample in samples:
        sample.gt_sem_seg.data[...] = 255
    assert float(model.loss(data['inputs'], samples)['distill.pixel']) == 0


def test_logits_of_another_size_are_resized(skd_files):  # noqa: F811
    cfg = skd_config(skd_files)
    # output stride 16 in the student, 8 in the teacher
    cfg.model.student.backbone.update(
        strides=(1, 2, 2, 2), dilations=(1, 1, 1, 2))
    model = build(cfg)
    data = batch(cfg, model)
    losses = model.loss(**data)
    assert all(
        torch.isfinite(losses[f'distill.{n}'])
        for n in ('pixel', 'pair', 'holistic'))


def test_class_count_mismatch_fails_at_build(skd_files):  # noqa: F811
    cfg = skd_config(skd_files)
    teacher = Config.fromfile(skd_files['teacher']).model
    teacher.decode_head.num_classes = 4
    teacher.auxiliary_head.num_classes = 4
    cfg.model.teacher = dict(config=teacher, checkpoint=None)
    with pytest.raises(
            ValueError, match=r'model\.losses\.pixel: .* 3 '
            r'classes .* gives 4'):
        build(cfg)
    cfg = skd_config(skd_files)
    cfg.model.critic.num_classes = 5
    with pytest.raises(ValueError, match=r'model\.critic\.num_classes is 5'):
        build(cfg)


def test_critic_without_num_classes_takes_the_logits_classes(
        skd_files):  # noqa: F811
    cfg = skd_config(skd_files)
    del cfg.model.critic['num_classes']
    assert build(cfg).critic.num_classes == 3


def test_pair_wise_tap_that_cannot_be_resized_fails_at_build(
        skd_files):  # noqa: F811,E501
    cfg = skd_config(skd_files)
    cfg.model.student = dict(
        type='mmseg.EncoderDecoder',
        data_preprocessor=cfg.model.student.data_preprocessor,
        backbone=dict(
            type='mmseg.VisionTransformer',
            img_size=(128, 128),
            embed_dims=16,
            num_layers=1,
            num_heads=2,
            out_indices=(0, ),
            init_cfg=None),
        decode_head=dict(
            type='mmseg.FCNHead',
            in_channels=16,
            channels=8,
            num_classes=3,
            num_convs=1,
            concat_input=False))
    # (N, 65, 16) tokens (with the cls token) against an (N, 16, 16, 16) map
    cfg.model.losses.pair.student = 'backbone.layers.0'
    with pytest.raises(
            ValueError,
            match=r"model\.losses\.pair: student "
            r"tap 'backbone\.layers\.0' gives \(1, 65, 16\)"):
        build(cfg)


def test_critic_without_its_optimizer_or_loss_fails(
        skd, skd_files):  # noqa: F811,E501
    cfg, model, _ = skd
    no_critic = dict(cfg.optim_wrapper)
    no_critic.pop('critic')
    with pytest.raises(KeyError, match=r'optim_wrapper\.critic is missing'):
        build_optim_wrapper(model, no_critic)
    cfg = skd_config(skd_files)
    cfg.model.critic = None
    with pytest.raises(
            KeyError,
            match=r'model\.losses\.holistic is a '
            'HolisticKDLoss, which needs model.critic'):
        build(cfg)


def test_the_recipe_configs_use_this_distiller():
    from conftest import REPO
    for name in ('pspnet', 'deeplabv3'):
        cfg = Config.fromfile(f'{REPO}/configs/{name}_r101_to_r18_skd.py')
        assert cfg.model.type == 'mmkd.StructuredDistiller'
        assert cfg.optim_wrapper.critic.optimizer.lr == 4e-4
        assert cfg.optim_wrapper.student.optimizer.type == 'SGD'
        assert cfg.model_wrapper_cfg.type == \
            'MMSeparateDistributedDataParallel'
        weights = {k: v.loss_weight for k, v in cfg.model.losses.items()}
        assert weights == dict(pixel=10.0, pair=0.5, holistic=0.1)
