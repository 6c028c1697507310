"""FiniteLossHook stops a run at its first NaN loss, naming it."""
import glob
import os
import os.path as osp
import subprocess
import sys

from tiny_setups import REPO, distill_config


def test_nan_loss_stops_training_and_names_it(det_files, tmp_path):
    cfg = distill_config(det_files)
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = 4, 100
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=2)
    config = str(tmp_path / 'nan.py')
    cfg.dump(config)
    work = tmp_path / 'work'
    # a loss weight of nan makes distill.hint nan from the first step on
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
        str(work), '--cfg-options', 'model.losses.hint.loss_weight=nan'
    ],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode != 0
    assert 'FloatingPointError: Iteration 1: non-finite loss' in proc.stderr
    assert 'distill.hint=nan' in proc.stderr
    # the cause is the setting, not the learning rate
    assert 'The config sets model.losses.hint.loss_weight=nan' in proc.stderr
    assert 'learning rate,' not in proc.stderr
    # stopped before any checkpoint of the NaN weights was written
    assert not glob.glob(str(work / '*.pth'))


def test_finite_run_is_untouched(det_files, tmp_path):
    from mmengine.runner import Runner
    cfg = distill_config(det_files)
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = 2, 100
    cfg.custom_hooks = [dict(type='mmkd.FiniteLossHook')]
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
