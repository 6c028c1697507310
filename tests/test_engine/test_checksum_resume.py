"""A damaged checkpoint stops ``--resume``, naming the file, instead of
training on garbage."""
import copy
import shutil

import pytest
import torch
from mmengine.runner import Runner

from mmkd.utils import CorruptCheckpointError, tensor_checksum
from mmkd.utils.checkpoint import CHECKSUM
from tiny_setups import distill_config


@pytest.fixture(scope='module')
def trained(det_files, tmp_path_factory):
    cfg = distill_config(det_files)
    cfg.work_dir = str(tmp_path_factory.mktemp('checksum'))
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 100
    Runner.from_cfg(copy.deepcopy(cfg)).train()
    return cfg


def resume(cfg, checkpoint):
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg.max_iters = 4
    cfg.resume, cfg.load_from = True, str(checkpoint)
    Runner.from_cfg(cfg).train()


def test_resume_hook_writes_the_checksum(trained):
    ckpt = torch.load(f'{trained.work_dir}/iter_2.pth')
    assert ckpt[CHECKSUM] == tensor_checksum(ckpt)


def test_bit_flips_stop_the_resume(trained, tmp_path):
    bad = tmp_path / 'iter_4.pth'
    shutil.copy(f'{trained.work_dir}/iter_2.pth', bad)
    shutil.copy(f'{trained.work_dir}/iter_2.pth', tmp_path / 'iter_2.pth')
    data = bytearray(bad.read_bytes())
    start = len(data) // 2  # 4 KiB in the middle: torch notices nothing
    end = start + 4096
    data[start:end] = bytes(b ^ 0xFF for b in data[start:end])
    bad.write_bytes(bytes(data))
    torch.load(bad)
    with pytest.raises(CorruptCheckpointError) as err:
        resume(trained, bad)
    assert f'{bad} is corrupted' in str(err.value)
    assert f"--resume {tmp_path / 'iter_2.pth'}" in str(err.value)


@pytest.mark.parametrize('keep', [0, 0.5])
def test_empty_and_truncated_files_name_themselves(trained, tmp_path, keep):
    bad = tmp_path / 'iter_2.pth'
    data = open(f'{trained.work_dir}/iter_2.pth', 'rb').read()
    bad.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CorruptCheckpointError, match=str(bad)):
        resume(trained, bad)
