"""NetAug: the base model inside wider weight-sharing models, through the
real Runner on the tiny mmseg and mmdet setups."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmkd.models.netaug.widths import leading, widened
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
    """The tiny PSPNet with an FCN decode head: PSPNet's pyramid pooling
    concatenates its widened input with the pooled maps, which NetAug
    refuses (see test_a_concatenation_of_widened_channels_fails)."""
    cfg = Config.fromfile(files['student'])
    head = dict(cfg.model.decode_head)
    head.pop('pool_scales')
    head.update(type='FCNHead', num_convs=1, concat_input=False)
    cfg.model.decode_head = head
    return cfg


def netaug_config(files, keys, work_dir, mults=(1.5, 2.0), hooks=(),
                  distil=False):
    if distil:
        cfg = distill_config(files)
    elif keys is SEG_KEYS:
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
    runner = train(cfg, max_iters=3)
    assert runner.model.augment is False
    hub = runner.message_hub
    assert hub.get_scalar('train/aug.loss').current() == 0
    # three steps of the base, two of the augmented model
    counts = [
        len(hub.get_scalar(f'train/{key}.loss_ce').data[0])
        for key in ('decode', 'aug.decode')
    ]
    assert counts == [3, 2]


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


def test_a_concatenation_of_widened_channels_fails_at_build(seg_files):
    # PSPNet's bottleneck reads [input, pooled maps]: in the wide model its
    # leading input channels are the wide input's, not the base's layout
    cfg = Config.fromfile(seg_files['student'])
    init_default_scope('mmseg')
    with pytest.raises(ValueError,
                       match=r'model.width_mults \(1.5\): with .* widened, '
                       r'the base model is not the leading-channel '
                       r"sub-network .* PSPNet's pyramid pooling"):
        MODELS.build(dict(type='mmkd.NetAug', model=cfg.model,
                          width_keys=SEG_KEYS, width_mults=[1.5]))
