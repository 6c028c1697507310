"""Saved ND centroids are reused only for the same teacher, data and
settings, or by a resumed run; a stale file is computed again."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from tiny_setups import roi_config, save_teacher


def nd_config(det_files, work_dir, checkpoint=None):
    cfg = roi_config(det_files)
    if checkpoint:
        cfg.model.teacher.checkpoint = checkpoint
    cfg.custom_hooks = cfg.custom_hooks + [
        dict(type='mmkd.TeacherCentroidHook', num_iters=1)
    ]
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = 2, 100
    return cfg


def train(cfg, max_iters=2):
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg.max_iters = max_iters
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = sorted(glob.glob(osp.join(cfg.work_dir, '*', '*.log')))[-1]
    with open(log) as f:
        return runner.model.constants['roi_centers'], f.read()


@pytest.fixture(scope='module')
def other_teacher(det_files, tmp_path_factory):
    out = tmp_path_factory.mktemp('other') / 'teacher.pth'
    return save_teacher(det_files['teacher'], str(out), seed=2)


def test_same_teacher_reuses(det_files, tmp_path):
    cfg = nd_config(det_files, tmp_path)
    first, _ = train(cfg)
    assert (tmp_path / 'roi_centers.pth.fingerprint').exists()
    again, log = train(cfg)
    assert 'ND centroids reused from' in log and 'same teacher' in log
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_another_teacher_recomputes(det_files, other_teacher, tmp_path):
    first, _ = train(nd_config(det_files, tmp_path))
    cfg = nd_config(det_files, tmp_path, other_teacher)
    second, log = train(cfg)
    assert 'are stale (computed for another teacher' in log
    assert not torch.equal(second, first)
    saved = torch.load(tmp_path / 'roi_centers.pth')
    torch.testing.assert_close(saved, second.cpu(), rtol=0, atol=0)


def test_file_without_fingerprint_is_stale(det_files, tmp_path):
    torch.save(torch.zeros(4, 32), tmp_path / 'roi_centers.pth')
    centers, log = train(nd_config(det_files, tmp_path))
    assert 'no fingerprint' in log and 'computing them again' in log
    assert centers.abs().sum() > 0


def test_resumed_run_keeps_its_centroids(det_files, other_teacher,
                                         tmp_path):
    first, _ = train(nd_config(det_files, tmp_path))
    cfg = nd_config(det_files, tmp_path, other_teacher)
    cfg.resume = True
    resumed, log = train(cfg, max_iters=4)
    assert 'reused from' in log and 'for the resumed run' in log
    torch.testing.assert_close(resumed, first, rtol=0, atol=0)
