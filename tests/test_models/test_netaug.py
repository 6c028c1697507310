"""NetAug: the base model inside wider weight-sharing models, through the
real Runner on the tiny mmseg and mmdet setups."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch.func import functional_call

from mmkd.models.distillers.single_teacher import probe_data_samples
from mmkd.models.netaug.netaug import nests
from mmkd.models.netaug.widths import block, leading, widened
from mmkd.registry import MODELS
from tiny_setups import REPO, check_export, distill_config, run_script

SEG_KEYS = [
    'backbone.base_channels', 'backbone.stem_channels',
    'decode_head.in_channels', 'decode_head.channels',
    'auxiliary_head.in_channels', 'auxiliary_head.channels'
]
# mmdet's ResNet derives its stem from base_channels
DET_KEYS = ['backbone.base_channels', 'neck.in_channels']


def fcn_student(files):
    """The tiny PSPNet with an FCN decode head (PSPNet itself: see
    test_a_concatenation_nests_piece_by_piece)."""
    cfg = Config.fromfile(files['student'])
    head = dict(cfg.model.decode_head)
    head.pop('pool_scales')
    head.update(type='FCNHead', num_convs=1, concat_input=False)
    cfg.model.decode_head = head
    return cfg


def netaug_config(files, keys, work_dir, mults=(1.5, 2.0), hooks=(),
                  distil=False, psp=False):
    if distil:
        cfg = distill_config(files)
    elif keys is SEG_KEYS and not psp:
        cfg = fcn_student(files)
    else:
        cfg = Config.fromfile(files['student'])
    cfg.model = dict(type='mmkd.NetAug', model=cfg.model, width_keys=keys,
                     width_mults=list(mults))
    cfg.custom_imports = dict(imports=['mmkd'])
    cfg.custom_hooks = [
        dict(type='mmkd.ExactResumeHook'),
        dict(type='mmkd.StudentExportHook'), *hooks
    ]
    cfg.work_dir = str(work_dir)
    return cfg


def train(cfg, max_iters=4, resume=False):
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg.max_iters = max_iters
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def seg_run(seg_files, tmp_path_factory):
    cfg = netaug_config(seg_files, SEG_KEYS,
                        tmp_path_factory.mktemp('netaug_seg'))
    return train(cfg)


def test_base_model_is_the_leading_slice_of_every_width(seg_run):
    model = seg_run.model
    before = torch.load(osp.join(seg_run.work_dir, 'iter_2.pth'),
                        weights_only=False)['state_dict']
    # base width 8, widest 2.0x: layer4 maps 8 * 2 * 4 to 8 * 2 * 8
    wide = model.aug_model.backbone.layer4[0].conv1.weight
    assert wide.shape == (128, 64, 3, 3)
    for mult in (1.5, 2.0):
        tensors = model.aug_tensors(mult)
        for name, param in model.tiny.named_parameters():
            assert torch.equal(tensors[name][leading(param.shape)],
                               param), (mult, name)
    # base and augmented-only weights both trained
    key = 'backbone.layer1.0.conv1.weight'
    assert not torch.equal(before[f'model.{key}'],
                           model.state_dict()[f'model.{key}'])
    assert not torch.equal(before[f'aug_model.{key}'],
                           model.state_dict()[f'aug_model.{key}'])


def test_the_augmented_loss_trains_base_and_augmented_weights(seg_run):
    model = copy.deepcopy(seg_run.model)
    batch = next(iter(seg_run.train_dataloader))
    data = model.data_preprocessor(batch, True)
    model.zero_grad()
    torch.manual_seed(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    aug = sum(v for k, v in losses.items()
              if k.startswith('aug.') and 'loss' in k)
    aug.backward()
    base = model.tiny.backbone.layer1[0].conv1.weight
    wide = model.aug_model.backbone.layer1[0].conv1.weight
    assert base.grad is not None and base.grad.abs().sum() > 0
    # the leading block is the base's: its own copy there gets nothing
    assert torch.count_nonzero(wide.grad[leading(base.shape)]) == 0
    assert wide.grad.abs().sum() > 0


def test_exported_base_model_predicts_as_the_wrapper(seg_run, seg_files):
    ckpt = torch.load(osp.join(seg_run.work_dir, 'student.pth'))
    assert ckpt['state_dict'].keys() == \
        seg_run.model.tiny.state_dict().keys()
    image = osp.join(seg_files['root'], 'data', 'img_dir', 'val', '0.png')
    check_export(seg_run, seg_files, image, 'mmseg.apis', 'init_model',
                 'inference_model', 'result.seg_logits.data')


def test_resume_equals_an_uninterrupted_run(seg_run, seg_files, tmp_path):
    cfg = netaug_config(seg_files, SEG_KEYS, tmp_path)
    train(cfg, max_iters=2)
    resumed = train(cfg, max_iters=4, resume=True)
    a, b = seg_run.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_hook_stops_the_augmentation(seg_files, tmp_path):
    cfg = netaug_config(seg_files, SEG_KEYS, tmp_path,
                        hooks=[dict(type='mmkd.NetAugHook', stop=2)])
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    runner = train(cfg, max_iters=3)
    assert runner.model.augment is False
    hub = runner.message_hub
    assert hub.get_scalar('train/aug.loss').current() == 0
    assert len(hub.get_scalar('train/decode.loss_ce').data[0]) == 3
    # the augmented model's values, frozen since the stop, are not logged
    # as if current
    assert not [k for k in hub.log_scalars if k.startswith('train/aug.d')]
    lines = [
        line for line in open(runner.logger.log_file)
        if 'Iter(train)' in line
    ]
    assert len(lines) == 3
    assert ['aug.decode.loss_ce' in line
            for line in lines] == [True, True, False]


def test_a_detector_with_netaug_and_distillation_through_tools_train(
        det_files, tmp_path):
    cfg = netaug_config(det_files, DET_KEYS, tmp_path, distil=True)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    config = osp.join(tmp_path, 'netaug_distil.py')
    cfg.dump(config)
    run_script(osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
               str(tmp_path))
    logs = open(osp.join(tmp_path, 'student_config.py')).read()
    assert 'NetAug' not in logs and 'Distiller' not in logs
    student = Config.fromfile(det_files['student'])
    init_default_scope('mmdet')
    plain = MODELS.build(student.model)
    state = torch.load(osp.join(tmp_path, 'student.pth'))['state_dict']
    plain.load_state_dict(state)  # strict: exactly the student's weights


@pytest.mark.parametrize('change, error, match', [
    (dict(width_keys=['backbone.base_channel']), KeyError,
     r"model.width_keys: 'backbone.base_channel': .* no such key"),
    (dict(width_mults=[0.5]), ValueError, r'model.width_mults must be .* > 1'),
    (dict(width_keys=['backbone.base_channels']), ValueError,
     r'model.width_mults \(1.5\): the model with .* does not build'),
    (dict(width_keys=['backbone.base_channels', 'backbone.depth']),
     ValueError, r'model.width_mults \(1.5\): the model with .* does not '
     'build'),
    (dict(alpha=-1), ValueError, 'model.alpha must be'),
    (dict(aug_init='zeros'), ValueError,
     "model.aug_init must be 'random' or 'preserve', got 'zeros'"),
])
def test_bad_widths_fail_at_build_naming_the_key(seg_files, change, error,
                                                 match):
    cfg = fcn_student(seg_files)
    init_default_scope('mmseg')
    model = dict(type='mmkd.NetAug', model=cfg.model, width_keys=SEG_KEYS,
                 width_mults=[1.5])
    model.update(change)
    with pytest.raises(error, match=match):
        MODELS.build(model)


def test_widened_keeps_derived_widths_consistent():
    cfg = dict(backbone=dict(base_channels=16),
               decode_head=dict(in_channels=128, channels=64))
    wide, factor = widened(cfg, ['backbone.base_channels',
                                 'decode_head.in_channels',
                                 'decode_head.channels'], 1.8)
    # 16 * 1.8 = 28.8 -> 29 channels; the rest follow the exact 29/16
    assert (wide.backbone.base_channels, wide.decode_head.in_channels,
            wide.decode_head.channels, factor) == (29, 232, 116, 1.8125)
    assert cfg['backbone']['base_channels'] == 16  # not modified
    cfg['decode_head']['channels'] = 20  # 20 * 29 / 16 is no count
    with pytest.raises(ValueError,
                       match=r"'decode_head.channels'=20 times the width "
                       r'factor 1.8125 \(width_mults entry 1.8 on '
                       r"'backbone.base_channels'\) is not a whole"):
        widened(cfg, ['backbone.base_channels', 'decode_head.channels'], 1.8)


def test_the_base_model_starts_as_plain_training_starts_it(seg_files):
    cfg = fcn_student(seg_files)
    init_default_scope('mmseg')
    torch.manual_seed(3)
    plain = MODELS.build(cfg.model)
    plain.init_weights()
    torch.manual_seed(3)
    netaug = MODELS.build(
        dict(type='mmkd.NetAug', model=cfg.model, width_keys=SEG_KEYS))
    netaug.init_weights()
    state = netaug.tiny.state_dict()
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0,
                                   msg=key)
    # and the training's stream is where plain training leaves it
    assert torch.equal(torch.rand(3), (torch.manual_seed(3), MODELS.build(
        cfg.model).init_weights(), torch.rand(3))[2])


def psp_netaug(seg_files, mults=(1.5, )):
    cfg = Config.fromfile(seg_files['student'])
    init_default_scope('mmseg')
    return MODELS.build(dict(type='mmkd.NetAug', model=cfg.model,
                             width_keys=SEG_KEYS, width_mults=list(mults)))


def test_a_concatenation_nests_piece_by_piece(seg_files):
    # PSPNet's bottleneck reads [input, 4 pooled maps]; with the input and
    # the head's channels widened 1.5x every piece is wider, so the base's
    # weights for the pooled maps sit after the wide input's channels
    model = psp_netaug(seg_files, mults=(1.5, 2.0))
    name = 'decode_head.bottleneck.conv.weight'
    head = model.tiny.decode_head
    c, ch = head.in_channels, head.channels
    assert model.layouts[1.0] == {name: {1: [c] + [ch] * 4}}
    assert model.layouts[1.5][name] == {1: [c * 3 // 2] + [ch * 3 // 2] * 4}
    base = head.bottleneck.conv.weight
    for mult in (1.5, 2.0):
        wide = model.aug_tensors(mult)[name]
        c_w = model.layouts[mult][name][1][0]
        ch_w = model.layouts[mult][name][1][1]
        assert torch.equal(wide[:ch, :c], base[:, :c])
        for i in range(4):  # each pooled map's leading channels
            assert torch.equal(
                wide[:ch, c_w + i * ch_w:c_w + i * ch_w + ch],
                base[:, c + i * ch:c + (i + 1) * ch]), (mult, i)
    # with the base's layout taken for leading blocks, it would not nest
    structure = model._structures[1.5]
    assert nests(model.tiny, structure, 64, model.layouts[1.0],
                 model.layouts[1.5])
    assert not nests(model.tiny, structure, 64)


def test_the_augmented_loss_reaches_the_base_through_a_concatenation(
        seg_files, tmp_path):
    runner = Runner.from_cfg(
        netaug_config(seg_files, SEG_KEYS, tmp_path, mults=(1.5, ),
                      psp=True))
    model = runner.model
    data = model.data_preprocessor(next(iter(runner.train_dataloader)),
                                   True)
    torch.manual_seed(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    aug = sum(v for k, v in losses.items()
              if k.startswith('aug.') and 'loss' in k)
    aug.backward()
    base = model.tiny.decode_head.bottleneck.conv.weight
    c = model.tiny.decode_head.in_channels
    # the pooled maps' weights (after the input's c channels) train too
    assert base.grad[:, c:].abs().sum() > 0
    wide = model.aug_model.decode_head.bottleneck.conv.weight
    index = block(base.shape, wide.shape, model.layouts[1.0][
        'decode_head.bottleneck.conv.weight'], model.layouts[1.5][
            'decode_head.bottleneck.conv.weight'])
    # the base's own blocks of the widest tensor get nothing
    assert torch.count_nonzero(wide.grad[index]) == 0
    assert wide.grad.abs().sum() > 0


def test_groupnorm_across_widened_channels_fails_at_build(seg_files):
    # GroupNorm's groups span other channels in the wide model
    cfg = fcn_student(seg_files)
    cfg.model.decode_head.norm_cfg = dict(type='GN', num_groups=4)
    init_default_scope('mmseg')
    with pytest.raises(ValueError,
                       match=r'model.width_mults \(1.5\): with .* widened, '
                       r'the base model is not the leading-channel '
                       r'sub-network .* in groups \(GroupNorm\)'):
        MODELS.build(dict(type='mmkd.NetAug', model=cfg.model,
                          width_keys=SEG_KEYS, width_mults=[1.5]))


@pytest.mark.parametrize('psp', [False, True])
def test_preserve_starts_every_width_as_the_base(seg_files, psp):
    cfg = Config.fromfile(seg_files['student']) if psp else fcn_student(
        seg_files)
    init_default_scope('mmseg')
    outputs = {}
    for aug_init in ('random', 'preserve'):
        torch.manual_seed(0)
        model = MODELS.build(
            dict(type='mmkd.NetAug', model=cfg.model, width_keys=SEG_KEYS,
                 width_mults=[1.5, 2.0], aug_init=aug_init))
        model.init_weights()
        model.eval()
        for structure in model._structures.values():
            structure.eval()  # no submodules: eval() does not reach them
        image = torch.rand(2, 3, 64, 64)
        samples = probe_data_samples(model.tiny, 64)
        with torch.no_grad():
            base = model.tiny._forward(image, samples)
            outputs[aug_init] = [
                functional_call(model._structures.get(m, model.aug_model),
                                model.aug_tensors(m), (image, samples))
                for m in (1.5, 2.0)
            ]
        # added channels are random in both: only what reaches the base's
        # channels from them starts at zero
        wide = model.aug_model.backbone.layer1[0].conv1.weight
        assert wide[8:, 8:].abs().sum() > 0
    for wide in outputs['preserve']:
        torch.testing.assert_close(wide, base, rtol=1e-5, atol=1e-6)
    for wide in outputs['random']:
        assert not torch.allclose(wide, base, rtol=1e-2, atol=1e-3)
