"""The recipes in configs/, on tiny models and generated data, through the
Runner: every loss positive and finite, validation run."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ddp_fixtures import DUMP_HOOK, free_port
from mmkd.engine import ConstantHook
from mmkd.registry import HOOKS
from tiny_setups import REPO, gfl_setup, run_script

RECIPES = [
    'faster_rcnn_r101_to_r50_chen.py', 'faster_rcnn_r101_to_r50_nd.py',
    'faster_rcnn_r101_to_r50_nd_tekap.py', 'faster_rcnn_r101_to_r50_pkd.py',
    'faster_rcnn_r101_to_r50_fgd.py'
]
# on a tiny GFL with 4 stacked head convs (CrossKD reuses the teacher's
# 4th) and equal head widths (CrossKD feeds the student's to the teacher's)
ONE_STAGE_RECIPES = [
    'gfl_r101_to_r50_crosskd.py', 'gfl_r101_to_r50_fgd.py',
    'retinanet_x101_to_r50_mgd.py', 'gfl_r101_to_r50_cwd.py'
]
SEG_RECIPES = [
    'pspnet_r101_to_r18_cwd.py', 'deeplabv3_r101_to_r18_dist.py',
    'pspnet_r101_to_r18_mgd.py'
]


def tiny_recipe(name: str, files: dict, work_dir) -> Config:
    """The recipe's losses, pairings and hooks; tiny student, teacher, data."""
    recipe = Config.fromfile(osp.join(REPO, 'configs', name))
    cfg = Config.fromfile(files['student'])
    cfg.model = dict(
        recipe.model,
        student=cfg.model,
        teacher=dict(config=files['teacher'], checkpoint=files['ckpt']))
    cfg.custom_imports = recipe.custom_imports
    cfg.custom_hooks = copy.deepcopy(recipe.custom_hooks)
    for hook in cfg.custom_hooks:  # as quickstart --fast: ask the hook
        cls = HOOKS.get(hook.type)
        if isinstance(cls, type) and issubclass(cls, ConstantHook):
            hook.update(HOOKS.build(dict(hook)).quick_settings())
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    return cfg


def train_tiny(name, files, tmp_path, metric='coco/bbox_mAP'):
    runner = Runner.from_cfg(tiny_recipe(name, files, tmp_path))
    runner.train()
    scalars = runner.message_hub.log_scalars
    for loss, spec in runner.cfg.model.losses.items():
        value = scalars[f'train/distill.{loss}'].current()
        # teacher-bounded regression is 0 wherever the student already
        # regresses better than the teacher, on every row of a batch
        bounded = spec.type.endswith('BoundedRegressionLoss')
        assert value == value and (value > 0 or bounded and value == 0), (
            loss, value)
    assert metric in scalars or f'val/{metric}' in scalars
    return runner


@pytest.fixture(scope='module')
def gfl_files(tmp_path_factory):
    return gfl_setup(str(tmp_path_factory.mktemp('gfl')), stacked_convs=4,
                     teacher_neck=16)


@pytest.mark.parametrize('name', ONE_STAGE_RECIPES)
def test_one_stage_recipe_trains_and_validates(name, gfl_files, tmp_path):
    train_tiny(name, gfl_files, tmp_path)


@pytest.mark.parametrize('name', SEG_RECIPES)
def test_segmentation_recipe_trains_and_validates(name, seg_files, tmp_path):
    train_tiny(name, seg_files, tmp_path, metric='mIoU')


@pytest.mark.parametrize('name', RECIPES)
def test_recipe_trains_and_validates(name, det_files, tmp_path):
    train_tiny(name, det_files, tmp_path)
    if '_nd' in name:
        centers = torch.load(tmp_path / 'roi_centers.pth')
        assert centers.shape == (4, 32)  # 3 classes + background, fc 32
        assert (centers.norm(dim=1) > 0).all()


def test_nd_recipe_with_ddp_and_centroids(det_files, tmp_path):
    (tmp_path / 'rank_dump.py').write_text(DUMP_HOOK)
    cfg = tiny_recipe('faster_rcnn_r101_to_r50_nd.py', det_files,
                      tmp_path / 'work')
    cfg.custom_imports = dict(imports=['mmkd', 'rank_dump'])
    cfg.custom_hooks.append(dict(type='DumpRankWeights'))
    config = str(tmp_path / 'nd.py')
    cfg.dump(config)
    run_script(
        'bash',
        osp.join(REPO, 'tools', 'dist_train.sh'),
        config,
        '2',
        env=dict(PYTHONPATH=f'{REPO}:{tmp_path}', PORT=str(free_port())))
    work = tmp_path / 'work'
    ranks = [torch.load(work / f'rank{r}.pth') for r in (0, 1)]
    for key in ranks[0]:
        torch.testing.assert_close(
            ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    centers = torch.load(work / 'roi_centers.pth')
    # all-reduced: both ranks started from the saved centroids, and their
    # running means (the recipe's running=True) stayed equal (above)
    for rank in (0, 1):
        start = torch.load(work / f'init{rank}.pth')
        torch.testing.assert_close(start['const.roi_centers'], centers)
    assert not torch.allclose(ranks[0]['const.roi_centers'], centers)
