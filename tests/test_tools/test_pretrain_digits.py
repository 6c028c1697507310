"""tools/pretrain_digits.py for a few iterations into a tmp dir: its
checkpoints load into the configured backbones through the configs' own
``init_cfg=dict(type='Pretrained', ...)``."""
import importlib.util
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from tiny_setups import REPO

DEMO = osp.join(REPO, 'configs', 'demo')


def load_tool():
    path = osp.join(REPO, 'tools', 'pretrain_digits.py')
    sys.path.insert(0, osp.dirname(path))
    spec = importlib.util.spec_from_file_location('pretrain_digits', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built_with(config: str, options: list):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(opt.split('=', 1) for opt in options))
    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('config, file', [
    ('faster_rcnn_r18_digits.py', 'resnet18_w16.pth'),
    ('pspnet_r18_digits.py', 'resnet18_v1c_w16.pth'),
])
def test_checkpoint_loads_through_the_pretrained_init_cfg(
        tmp_path, config, file):
    tool = load_tool()
    path = osp.join(DEMO, config)
    options = tool.prepare(path, str(tmp_path), iters=2)
    out = str(tmp_path / file)
    assert options == [f'model.backbone.init_cfg.checkpoint={out}']
    # weights_only, as mmengine's loader reads it
    saved = torch.load(out, weights_only=True)
    assert saved['meta']['iters'] == 2
    assert 0 <= saved['meta']['val_accuracy'] <= 1

    model = built_with(path, options)
    fresh = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()  # what the Runner does before training
    loaded = model.backbone.state_dict()
    assert loaded.keys() == saved['state_dict'].keys()
    for key, value in saved['state_dict'].items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    changed = [
        k for k, v in saved['state_dict'].items()
        if v.is_floating_point() and not torch.equal(v, fresh[k])
    ]
    assert any('conv' in k for k in changed)
    # the dilated segmentation backbone keeps its dilations
    if 'pspnet' in config:
        assert model.backbone.layer4[1].conv1.dilation == (4, 4)


def test_cached_unless_forced_and_shared_by_configs(tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / 'resnet18_w16.pth'
    tool.prepare(osp.join(DEMO, 'faster_rcnn_r18_digits.py'), str(tmp_path),
                 iters=2)
    stamp = os.stat(out).st_mtime_ns
    # GFL's student has the same backbone and reuses the file
    tool.prepare(osp.join(DEMO, 'gfl_r18_digits.py'), str(tmp_path), iters=2)
    assert os.stat(out).st_mtime_ns == stamp
    assert 'cached' in capsys.readouterr().out
    tool.prepare(osp.join(DEMO, 'gfl_r18_digits.py'), str(tmp_path), iters=2,
                 force=True)
    assert os.stat(out).st_mtime_ns != stamp
    # a file that holds another backbone is refused, not loaded half
    os.replace(out, tmp_path / 'resnet34_w32.pth')
    with pytest.raises(RuntimeError, match='another backbone'):
        tool.prepare(osp.join(DEMO, 'faster_rcnn_r34_digits.py'),
                     str(tmp_path))


def test_distiller_student_is_pretrained_teacher_is_not():
    tool = load_tool()
    config = osp.join(DEMO, 'faster_rcnn_r34_to_r18_digits_hint.py')
    found = tool.pretrained_backbones(Config.fromfile(config))
    assert [(key, osp.basename(ckpt)) for key, _, ckpt in found] == [
        ('model.student.backbone', 'resnet18_w16.pth')
    ]
    scratch = tool.scratch_options(config)
    assert scratch == ['model.student.backbone.init_cfg=None']
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.student.backbone.init_cfg': None})
    assert cfg.model.student.backbone.init_cfg is None
