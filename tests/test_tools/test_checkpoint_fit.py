"""tools/test.py and tools/export_student.py refuse weights that do not fit
the student, instead of testing or exporting an untrained one."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tiny_setups import REPO, distill_config, run_script, save_teacher


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True,
        text=True,
        timeout=600)


@pytest.fixture(scope='module')
def det_config(det_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp('fit')
    path = str(folder / 'distill.py')
    distill_config(det_files).dump(path)
    return path


def test_test_tool_refuses_a_teacher_checkpoint(det_files, det_config,
                                                tmp_path):
    test = osp.join(REPO, 'tools', 'test.py')
    args = (test, det_config, det_files['ckpt'], '--work-dir', str(tmp_path))
    proc = run(*args, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert f"{det_files['ckpt']} does not fit the model of {det_config}" \
        in proc.stderr
    assert 'shape mismatches' in proc.stderr and '--no-strict' in proc.stderr
    assert 'bbox_mAP' not in proc.stdout + proc.stderr
    proc = run_script(*args, '--no-strict', cwd=str(tmp_path))
    assert 'does not fit the model' in proc.stderr
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def test_test_tool_takes_a_fitting_checkpoint(det_files, det_config,
                                              tmp_path):
    ckpt = save_teacher(det_files['student'], str(tmp_path / 'student.pth'))
    proc = run_script(
        osp.join(REPO, 'tools', 'test.py'),
        det_config,
        ckpt,
        '--work-dir',
        str(tmp_path),
        cwd=str(tmp_path))
    assert 'does not fit' not in proc.stdout + proc.stderr
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def test_export_refuses_another_architecture(det_config, seg_files,
                                             tmp_path):
    """A segmentor distiller's checkpoint with a detection config writes
    nothing."""
    state = torch.load(seg_files['ckpt'])['state_dict']
    ckpt = str(tmp_path / 'seg_distiller.pth')
    torch.save(dict(state_dict={f'student.{k}': v
                                for k, v in state.items()}), ckpt)
    out = tmp_path / 'student.pth'
    proc = run(
        osp.join(REPO, 'tools', 'export_student.py'),
        det_config,
        ckpt,
        str(out),
        cwd=str(tmp_path))
    assert proc.returncode != 0
    assert f'{ckpt} does not fit the student of the config' in proc.stderr
    assert 'missing keys' in proc.stderr
    assert not list(tmp_path.glob('student*'))


def test_export_refuses_a_wider_student(det_files, tmp_path):
    """Same keys, other shapes (the teacher's weights as the student's)."""
    from mmengine.registry import init_default_scope

    from mmkd.models.distillers.builder import build_model
    from mmkd.utils import export_student
    state = torch.load(det_files['ckpt'])['state_dict']
    distiller = dict(state_dict={f'student.{k}': v for k, v in state.items()})
    cfg = distill_config(det_files)
    init_default_scope('mmdet')
    student = build_model(cfg.model.student, 'model.student')
    out = str(tmp_path / 'student.pth')
    with pytest.raises(RuntimeError, match='shape mismatches'):
        export_student(distiller, out, cfg, model=student)
    assert not osp.exists(out)


def test_students_own_config_takes_a_distiller_checkpoint(
        det_files, tmp_path):
    weights = torch.load(
        save_teacher(det_files['student'], str(tmp_path / 'w.pth')))
    ckpt = str(tmp_path / 'iter_2.pth')
    torch.save(
        dict(state_dict={
            f'student.{k}': v
            for k, v in weights['state_dict'].items()
        }), ckpt)
    proc = run_script(
        osp.join(REPO, 'tools', 'test.py'),
        det_files['student'],
        ckpt,
        '--work-dir',
        str(tmp_path),
        cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert 'missing keys' not in out and 'does not fit' not in out
    assert 'coco/bbox_mAP' in out
