"""Session fixtures: the tiny detection and segmentation setups of
:mod:`tiny_setups`, written once per test session."""
import os.path as osp

import pytest

from tiny_setups import (DET_CONFIG, SEG_CONFIG, save_teacher, write_coco,
                         write_config, write_seg)


@pytest.fixture(scope='session')
def det_files(tmp_path_factory):
    """COCO data, student and teacher configs, and a teacher checkpoint."""
    root = str(tmp_path_factory.mktemp('det'))
    write_coco(osp.join(root, 'data'))
    student = write_config(
        osp.join(root, 'student.py'),
        DET_CONFIG,
        osp.join(root, 'data'),
        base=8,
        neck=16)
    teacher = write_config(
        osp.join(root, 'teacher.py'),
        DET_CONFIG,
        osp.join(root, 'data'),
        base=16,
        neck=32)
    ckpt = save_teacher(teacher, osp.join(root, 'teacher.pth'))
    return dict(root=root, student=student, teacher=teacher, ckpt=ckpt)


@pytest.fixture(scope='session')
def seg_files(tmp_path_factory):
    """mmseg-format data, student and teacher configs, teacher weights."""
    root = str(tmp_path_factory.mktemp('seg'))
    write_seg(osp.join(root, 'data'))
    student = write_config(
        osp.join(root, 'student.py'),
        SEG_CONFIG,
        osp.join(root, 'data'),
        base=8,
        neck=8)
    teacher = write_config(
        osp.join(root, 'teacher.py'),
        SEG_CONFIG,
        osp.join(root, 'data'),
        base=16,
        neck=16)
    ckpt = save_teacher(teacher, osp.join(root, 'teacher.pth'))
    return dict(root=root, student=student, teacher=teacher, ckpt=ckpt)
