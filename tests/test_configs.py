"""Every config in configs/ loads and builds its model (no download), and
dumps as a plain mmdet/mmseg config: the distiller under `model`, no
method fragment or teacher left at the top level."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmkd.models import SingleTeacherDistiller
from tiny_setups import REPO

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)
METHODS = sorted(
    glob.glob(osp.join(REPO, 'configs', '_base_', 'methods', '*.py')))
# what a method block may hold: keys that merge into the distiller
DISTILLER_KEYS = {
    'type', 'student', 'pairings', 'losses', 'critic', 'critic_steps',
    'gp_weight', 'critic_loss_weight'
}


def test_there_are_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    if cfg.model.type == 'mmkd.NetAug':  # a tiny model inside wider ones
        assert '_netaug' in osp.basename(path)
        inner = cfg.model.model
        if 'teacher' in inner:  # NetAug and distillation
            inner.teacher.checkpoint = None
            with pytest.warns(UserWarning, match='teacher keeps its initial'):
                MODELS.build(cfg.model)
        else:
            MODELS.build(cfg.model)
        return
    if 'teacher' not in cfg.model:  # a demo teacher or student
        assert '/demo/' in path
        MODELS.build(cfg.model)
        return
    if cfg.model.type == 'mmkd.SFTNTeacher':  # trains a teacher: no weights
        assert '_sftn_' in osp.basename(path)
        MODELS.build(cfg.model)
        return
    if '/demo/' not in path:
        assert cfg.model.teacher.checkpoint.startswith(
            'https://download.openmmlab.com/')
    assert 'mmkd' in cfg.custom_imports.imports
    cfg.model.teacher.checkpoint = None  # skip the download
    with pytest.warns(UserWarning, match='teacher keeps its initial weights'):
        model = MODELS.build(cfg.model)
    assert isinstance(model, SingleTeacherDistiller)
    assert len(model.distill_losses) >= 1
    name = osp.basename(path)
    assert '_to_' in name, 'configs are named {model}_{t}_to_{s}_{method}.py'


# each method fragment's top-level names, by fragment
FRAGMENTS = {osp.basename(p): set(Config.fromfile(p).keys()) for p in METHODS}


@pytest.mark.parametrize('name,keys', FRAGMENTS.items())
def test_method_blocks_merge_into_the_distiller(name, keys):
    """A block is exactly what a leaf merges into `model`; hooks and a
    critic's optimizer live beside it, as `<block>_hooks` and
    `<block>_critic_optim_wrapper`."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'methods', name))
    for key in keys:
        if key.endswith('_hooks'):
            assert isinstance(cfg[key], list), key
        elif key.endswith('_optim_wrapper'):
            assert cfg[key].type == 'OptimWrapper', key
        else:
            assert set(cfg[key]) <= DISTILLER_KEYS, (key, set(cfg[key]))


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_dumps_without_fragments(path):
    """Leaves merge a method with `model = _base_.pop('<block>')`, not field
    by field with `{{_base_.<block>.losses}}`, and pop what they use: the
    dumped config has no method block, hook list or teacher at the top."""
    with open(path, encoding='utf-8') as f:
        assert '{{_base_' not in f.read()
    stray = {'teacher'}.union(*FRAGMENTS.values())
    keys = set(Config.fromfile(path).keys())
    assert not keys & stray
    assert not [k for k in keys if 'teacher' in k]
