"""A SIGKILL at any point of a checkpoint's save loses nothing: ``--resume``
continues and ends bit-identical to a run never killed."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

from tiny_setups import REPO, distill_config, run_script

# Kills the run at one point of the save of iter_4.pth. 'writing' leaves
# the half of the file a kill during the write leaves.
KILL_POINTS = """
import os, signal
from mmkd.engine.hooks import AtomicCheckpointHook
from mmkd.registry import HOOKS
from mmkd.utils.atomic import PARTIAL

POINT, AT = os.environ.get('KILL_POINT', 'never'), 'iter_4.pth'


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillingCheckpointHook(AtomicCheckpointHook):

    def _publish(self, path):
        due = path.endswith(AT)
        if due and POINT == 'writing':
            partial = path + PARTIAL
            with open(partial, 'rb+') as f:
                f.truncate(os.path.getsize(partial) // 2)
            kill()
        if due and POINT == 'written':
            kill()
        super()._publish(path)
        if due and POINT == 'renamed':
            kill()

    def _point_to(self, runner, path):
        super()._point_to(runner, path)
        if path.endswith(AT) and POINT == 'pointed':
            kill()
"""


def write_config(det_files, folder):
    cfg = distill_config(det_files)
    cfg.train_cfg.max_iters = 6
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint = dict(
        type='mmkd.KillingCheckpointHook',
        by_epoch=False,
        interval=2,
        max_keep_ckpts=1)
    cfg.custom_imports = dict(imports=['mmkd', 'kill_points'])
    (folder / 'kill_points.py').write_text(KILL_POINTS)
    path = str(folder / 'distill.py')
    cfg.dump(path)
    return path


def train(config, work_dir, *args, point='never'):
    folder = osp.dirname(config)
    env = dict(
        os.environ,
        KILL_POINT=point,
        PYTHONPATH=os.pathsep.join([folder, REPO]))
    return subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
        str(work_dir), *args
    ],
                          cwd=folder,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)


@pytest.fixture(scope='module')
def straight(det_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp('straight')
    config = write_config(det_files, folder)
    proc = train(config, folder / 'work')
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights = torch.load(folder / 'work' / 'iter_6.pth')['state_dict']
    return config, weights


@pytest.mark.parametrize('point', ['writing', 'written', 'renamed', 'pointed'])
def test_kill_during_save_then_resume(straight, point, tmp_path):
    config, expected = straight
    work = tmp_path / 'work'
    killed = train(config, work, point=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    last = (work / 'last_checkpoint').read_text()
    assert osp.isfile(last), f'last_checkpoint names {last}, which is gone'
    torch.load(last)  # complete
    proc = run_script(
        osp.join(REPO, 'tools', 'train.py'),
        config,
        '--work-dir',
        str(work),
        '--resume',
        '--cfg-options',
        'default_hooks.checkpoint.type=mmkd.AtomicCheckpointHook',
        cwd=osp.dirname(config),
        env=dict(PYTHONPATH=os.pathsep.join([osp.dirname(config), REPO])))
    assert f'Auto resumed from the latest checkpoint {last}' in proc.stdout \
        + proc.stderr
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_6.pth')
    assert not list(work.glob('*.partial'))
    resumed = torch.load(work / 'iter_6.pth')['state_dict']
    assert resumed.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(
            resumed[key], expected[key], rtol=0, atol=0, msg=key)


def test_train_tool_saves_atomically(straight):
    """tools/train.py puts AtomicCheckpointHook in CheckpointHook's place."""
    from mmengine.config import Config
    config, _ = straight
    cfg = Config.fromfile(config, import_custom_modules=False)
    cfg.default_hooks.checkpoint.type = 'CheckpointHook'
    cfg.dump(config.replace('distill.py', 'plain.py'))
    work = osp.join(osp.dirname(config), 'plain_work')
    proc = train(
        config.replace('distill.py', 'plain.py'), work, '--cfg-options',
        'train_cfg.max_iters=2')
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(osp.join(work, 'iter_2.pth'))
    assert 'mmkd.AtomicCheckpointHook' in ckpt['meta']['cfg']
