"""tools/export_sftn_teacher.py writes the teacher of any SFTN checkpoint,
and tools/test.py measures the teacher an SFTN config trains."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmkd.models import SFTNTeacher
from tiny_setups import REPO, run_script


@pytest.fixture(scope='module')
def sftn_files(seg_files, tmp_path_factory):
    """An SFTN config file and a checkpoint of its model."""
    root = tmp_path_factory.mktemp('sftn_tool')
    cfg = Config.fromfile(seg_files['teacher'])
    cfg.model = dict(
        type='mmkd.SFTNTeacher',
        teacher=seg_files['teacher'],
        student=seg_files['student'],
        branch_points=(2, 3))
    cfg.custom_imports = dict(imports=['mmkd'])
    config = str(root / 'sftn.py')
    cfg.dump(config)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = SFTNTeacher(**{k: v for k, v in cfg.model.items() if k != 'type'})
    ckpt = str(root / 'iter_4.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=4)), ckpt)
    return dict(root=root, config=config, ckpt=ckpt, model=model)


def test_export_writes_the_teacher_alone(sftn_files):
    out = sftn_files['root'] / 'teacher.pth'
    run_script(
        osp.join(REPO, 'tools', 'export_sftn_teacher.py'),
        sftn_files['config'], sftn_files['ckpt'], str(out))
    exported = torch.load(out)
    teacher = sftn_files['model'].teacher.state_dict()
    assert exported['state_dict'].keys() == teacher.keys()
    for key, value in teacher.items():
        torch.testing.assert_close(exported['state_dict'][key], value)
    assert exported['meta']['iter'] == 4
    config = Config.fromfile(str(sftn_files['root'] / 'teacher_config.py'))
    assert config.model.type == 'EncoderDecoder'
    assert config.model.backbone.base_channels == 16
    assert 'custom_imports' not in config


def test_export_refuses_a_distiller_checkpoint(sftn_files, tmp_path):
    ckpt = str(tmp_path / 'distiller.pth')
    torch.save(dict(state_dict={'student.w': torch.ones(1)}), ckpt)
    proc = subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools', 'export_sftn_teacher.py'),
         sftn_files['config'], ckpt, str(tmp_path / 'teacher.pth')],
        cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'the checkpoint has no teacher.* weights: is it an SFTN ' \
        'checkpoint?' in proc.stderr
    assert not list(tmp_path.glob('teacher*'))


def test_tools_test_measures_the_teacher(sftn_files, tmp_path):
    proc = run_script(
        osp.join(REPO, 'tools', 'test.py'), sftn_files['config'],
        sftn_files['ckpt'], '--work-dir', str(tmp_path))
    assert 'mIoU' in proc.stdout + proc.stderr
