"""Every config in configs/ loads and builds its model (no download)."""
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


def test_there_are_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    if 'teacher' not in cfg.model:  # a demo teacher or student
        assert '/demo/' in path
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
