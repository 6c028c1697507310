"""TeacherCheckHook scores the teacher with the run's own metric before
training and warns or stops below the floor."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from tiny_setups import REPO, distill_config


def runner_with_check(files, tmp_path, tap='neck', **check):
    cfg = distill_config(files, tap=tap)
    cfg.custom_hooks = cfg.custom_hooks + [
        dict(type='mmkd.TeacherCheckHook', num_batches=2, **check)
    ]
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = 2, 2
    return Runner.from_cfg(cfg)


def test_untrained_teacher_stops_the_run(det_files, tmp_path):
    # the fixture's teacher checkpoint holds untrained weights: mAP 0
    runner = runner_with_check(det_files, tmp_path, action='error')
    with pytest.raises(
            RuntimeError,
            match=r'TeacherCheckHook: the teacher scores coco/bbox_mAP='
            r'\S+ on 2 validation batches, at or below floor=0.0'):
        runner.train()
    assert runner.iter == 0


def test_segmentation_metric_floor_and_warning(seg_files, tmp_path):
    runner = runner_with_check(
        seg_files, tmp_path, tap='decode_head.bottleneck', metric='mIoU',
        floor=100.0)
    runner.train()  # warns, trains on
    assert runner.iter == 2
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    assert 'Teacher on 2 validation batches: aAcc' in log
    assert 'the teacher scores mIoU=' in log and 'floor=100.0' in log
    # the student's own validation ran as usual afterwards
    assert 'mIoU' in runner.message_hub.log_scalars or \
        'val/mIoU' in runner.message_hub.log_scalars


def test_bad_settings():
    from mmkd.engine import TeacherCheckHook
    with pytest.raises(ValueError, match="action is 'stop'; valid values"):
        TeacherCheckHook(action='stop')
    with pytest.raises(ValueError, match='floor must be a finite number'):
        TeacherCheckHook(floor=float('nan'))


@pytest.mark.parametrize('name', [
    'faster_rcnn_r34_to_r18_digits_hint.py',
    'faster_rcnn_r34_to_r18_digits_chen.py', 'gfl_r34_to_r18_digits_ld.py',
    'pspnet_r34_to_r18_digits_hint.py', 'pspnet_r34_to_r18_digits_skd.py'
])
def test_on_in_the_demo_configs(name):
    """Through configs/_base_/distill_runtime.py."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name))
    assert any(h.type == 'mmkd.TeacherCheckHook' for h in cfg.custom_hooks)


def test_a_teacher_that_predicts_no_box_scores_zero(det_files, tmp_path):
    # mmdet's CocoMetric reports no metric at all when nothing is predicted
    silent = tmp_path / 'silent_teacher.py'
    silent.write_text(
        f"_base_ = '{det_files['teacher']}'\n"
        'model = dict(test_cfg=dict(rcnn=dict(score_thr=1.1)))\n')
    files = dict(det_files, teacher=str(silent))
    runner = runner_with_check(files, tmp_path, action='error')
    with pytest.raises(RuntimeError,
                       match=r'the teacher scores every metric=0.0 on 2 '
                       r'validation batches'):
        runner.train()
