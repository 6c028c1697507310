"""StructuredDistiller: alternating student and critic steps, ignore
masking, build-time checks."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.testing import assert_close

from mmkd.models import StructuredDistiller
from mmkd.models.distillers.taps import levels_of
from mmkd.models.losses.holistic import critic_loss
from skd_fixtures import skd_files  # noqa: F401
from skd_fixtures import LOGITS, skd_config, skd_losses


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
    # the student's losses give the critic and the teacher no gradient
    assert all(p.grad is None for p in model.critic.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    # the critic's step on the detached maps of that forward
    student = params(model.student)
    log_vars = model.train_critic(wrappers['critic'])
    assert torch.isfinite(log_vars['critic.loss'])
    # (attention projections wait for their gate, which starts at 0)
    assert {
        'score.weight', 'features.3.gamma', 'features.0.0.'
        'parametrizations.weight.original', 'preprocess.weight'
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
    # Adam counts its steps in its state
    cfg.optim_wrapper.critic.optimizer = dict(type='Adam', lr=4e-4)
    model = build(cfg)
    wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    model.loss(**data)
    model.train_critic(wrappers['critic'])
    state = wrappers['critic'].optimizer.state
    assert {int(s['step']) for s in state.values()} == {3}


def all_ignored(data):
    samples = copy.deepcopy(data['data_samples'])
    for sample in samples:
        sample.gt_sem_seg.data[...] = 255  # all ignored (as padding is)
    return samples


def student_grads(model, losses):
    model.zero_grad()
    sum(v for k, v in losses.items() if k.startswith('distill.')).backward()
    return [p.grad for p in model.student.parameters() if p.grad is not None]


def test_ignored_pixels_count_in_no_pixel_or_pair_term(skd):
    _, model, data = skd
    model.train()
    losses = model.loss(data['inputs'], all_ignored(data))
    assert float(losses['distill.pixel']) == 0
    assert float(losses['distill.pair']) == 0
    # the official critic sees the whole maps, labelled or not
    maps_s, maps_t, _ = model.distill_losses['holistic'].critic_batch
    assert maps_s.any() and maps_t.any()
    assert any(g.any() for g in student_grads(model, losses))


def test_masked_critic_input_ignores_them_too(skd_files, skd):  # noqa: F811
    _, _, data = skd
    losses = skd_losses(
        holistic_inputs=dict(valid_mask='batch.valid_mask'))
    model = build(skd_config(skd_files, losses=losses))
    model.train()
    losses = model.loss(data['inputs'], all_ignored(data))
    assert not any(g.any() for g in student_grads(model, losses))
    # the critic sees zero maps on both sides: nothing to tell apart
    maps_s, maps_t, _ = model.distill_losses['holistic'].critic_batch
    assert not maps_s.any() and not maps_t.any()


def test_critic_reads_raw_logits_by_default(skd):
    _, model, data = skd
    model.train()
    twin = copy.deepcopy(model.critic)
    losses = model.loss(**data)
    maps_s, maps_t, images = model.distill_losses['holistic'].critic_batch
    assert images is None
    logits_t = levels_of(
        model._teacher_records(data['inputs'],
                               data['data_samples'])[LOGITS])[0]
    assert_close(maps_t, logits_t)  # not their softmax
    assert not torch.allclose(maps_t.sum(dim=1), torch.ones(()))
    # the student's term scores its raw logits through the same critic
    assert_close(losses['distill.holistic'], -0.1 * twin(maps_s).mean())


def test_probability_critic_sees_softmax_and_image(skd_files, skd):  # noqa
    _, _, data = skd
    critic = dict(
        type='mmkd.HolisticCritic',
        input_type='probs',
        in_image_channels=3,
        base_channels=8)
    with pytest.raises(ValueError, match=r"model\.critic reads images .*"
                       r"model\.losses\.holistic\.inputs=dict\(images="):
        build(skd_config(skd_files, critic=critic))
    losses = skd_losses(holistic_inputs=dict(images='batch.inputs'))
    model = build(skd_config(skd_files, losses=losses, critic=critic))
    model.train()
    model.loss(**data)
    maps_s, maps_t, images = model.distill_losses['holistic'].critic_batch
    for maps in (maps_s, maps_t):
        assert_close(maps.sum(dim=1), torch.ones_like(maps[:, 0]))
    assert torch.equal(images, data['inputs'])


def test_critic_loss_is_scaled_by_lambda_d(skd):
    cfg, model, data = skd
    assert model.critic_loss_weight == 0.1
    model.train()
    wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    model.loss(**data)
    maps_s, maps_t, _ = model.distill_losses['holistic'].critic_batch
    twin = copy.deepcopy(model.critic)
    torch.manual_seed(3)
    expected = 0.1 * critic_loss(twin, maps_s, maps_t, gp_weight=10.)
    torch.manual_seed(3)
    logged = model.train_critic(wrappers['critic'])['critic.loss']
    assert_close(logged, expected.detach())


def test_critic_trains_in_fp32_on_the_maps_of_an_amp_student_step(skd):
    """Under --amp the student's maps are fp16; the critic's own optimizer
    is a plain one, so its step must read them in fp32 (it failed with
    'Input type (c10::Half) and bias type (float)' on CUDA)."""
    cfg, model, data = skd
    model.train()
    wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    model.loss(**data)
    holistic = model.distill_losses['holistic']
    maps_s, maps_t, images = holistic.critic_batch
    twin = copy.deepcopy(model.critic)
    holistic.critic_batch = (maps_s.half(), maps_t.half(), images)
    torch.manual_seed(3)
    logged = model.train_critic(wrappers['critic'])['critic.loss']
    torch.manual_seed(3)
    expected = 0.1 * critic_loss(twin, maps_s.half().float(),
                                 maps_t.half().float(), gp_weight=10.)
    assert logged.dtype == torch.float32
    assert_close(logged, expected.detach())


@pytest.mark.parametrize('key,value', [('critic_loss_weight', 0),
                                       ('critic_loss_weight', '0.1'),
                                       ('critic_steps', 0)])
def test_bad_critic_settings_fail_at_build(skd_files, key, value):  # noqa
    with pytest.raises(ValueError, match=f'model.{key} must be'):
        build(skd_config(skd_files, **{key: value}))


def test_the_old_mask_switch_names_its_replacement(skd_files):  # noqa: F811
    with pytest.raises(ValueError,
                       match=r"mask_critic_input is gone.*inputs=dict\("
                       r"valid_mask='batch.valid_mask'\)"):
        build(skd_config(skd_files, mask_critic_input=True))


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
            ValueError,
            match=r'model\.losses\.pixel: .*\b3\]? '
            r'classes .*\b4\b'):
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
    from tiny_setups import REPO
    students = {
        'pspnet_r101_to_r18_skd':
        'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
        'deeplabv3_r101_to_r18_skd':
        'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
        'demo/pspnet_r34_to_r18_digits_skd':
        f'{REPO}/configs/demo/pspnet_r18_digits.py'
    }
    for name, student in students.items():
        cfg = Config.fromfile(f'{REPO}/configs/{name}.py')
        assert cfg.model.type == 'mmkd.StructuredDistiller'
        assert cfg.optim_wrapper.student.optimizer.type == 'SGD'
        # StructuredDistiller.separate_ddp picks the per-child wrapper
        assert cfg.model_wrapper_cfg.type == 'mmkd.DistillerDataParallel'
        # the paper's weights; pixel: lambda_pi 10 x the official 8 images
        weights = {k: v.loss_weight for k, v in cfg.model.losses.items()}
        assert weights == dict(pixel=80.0, pair=0.5, holistic=0.1)
        assert cfg.model.losses.pixel.reduction == 'mean'
        # the official critic: raw logits, lambda_d on its loss, SGD with
        # weight decay and its own poly decay to 0 over the run
        assert cfg.model.critic.get('input_type') == 'logits'
        assert not cfg.model.critic.get('in_image_channels')
        assert cfg.model.critic_loss_weight == 0.1
        assert cfg.model.gp_weight == 10.0
        assert cfg.optim_wrapper.critic.optimizer == dict(
            type='SGD', lr=4e-4, momentum=0.9, weight_decay=5e-4)
        poly, = cfg.param_scheduler.critic
        assert (poly.type, poly.eta_min, poly.power, poly.begin,
                poly.end) == ('PolyLR', 0.0, 0.9, 0, cfg.train_cfg.max_iters)
        assert '_delete_' not in cfg.param_scheduler
        # the student keeps the schedule of its own config
        student = Config.fromstring(f'_base_ = {student!r}', '.py')
        assert cfg.param_scheduler.student == student.param_scheduler
        assert cfg.train_cfg.max_iters == student.train_cfg.max_iters
