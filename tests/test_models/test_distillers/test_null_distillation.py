"""A distiller whose losses weigh nothing trains, through the real Runner,
exactly the student that plain training with the same seed trains: building
the teacher, the adapters and the probe, and the hooks that run the teacher
before training, draw nothing from the training's random stream. A method's
gain over the baseline is then the method's, not another initialisation's.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tiny_setups import distill_config


def trained_student(cfg, work_dir, name):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir / name)
    cfg.experiment_name = name
    cfg.train_cfg.max_iters = 3
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    return getattr(model, 'student', model).state_dict()


@pytest.mark.parametrize('files, tap', [('det_files', 'neck'),
                                        ('seg_files', 'decode_head.conv_seg')])
def test_zero_weight_distillation_is_plain_training(files, tap, request,
                                                    tmp_path):
    files = request.getfixturevalue(files)
    plain = trained_student(Config.fromfile(files['student']), tmp_path,
                            'plain')
    cfg = distill_config(files, tap=tap, adapter=True, loss_weight=0.0)
    # the teacher check runs the teacher over validation batches first
    cfg.custom_hooks.append(dict(type='mmkd.TeacherCheckHook'))
    distilled = trained_student(cfg, tmp_path, 'distilled')
    assert plain.keys() == distilled.keys()
    changed = [k for k in plain if not torch.equal(plain[k], distilled[k])]
    assert changed == []
