"""Tiny PSPNet structured-KD setups (128x128 images: the critic needs
16x16 logits), shared by the distiller and end-to-end tests."""
import os.path as osp

import pytest
from mmengine.config import Config

from tiny_setups import SEG_CONFIG, save_teacher, write_config, write_seg

LOGITS, FEATS = 'decode_head.conv_seg', 'decode_head.bottleneck'


@pytest.fixture(scope='session')
def skd_files(tmp_path_factory):
    """128x128 mmseg data, PSPNet student/teacher configs, teacher weights."""
    root = str(tmp_path_factory.mktemp('skd'))
    write_seg(
        osp.join(root, 'data'), splits=(('train', 4), ('val', 2)), size=128)
    template = SEG_CONFIG.replace('crop_size = (64, 64)',
                                  'crop_size = (128, 128)')
    files = dict(root=root)
    for name, base in (('student', 8), ('teacher', 16)):
        files[name] = write_config(
            osp.join(root, f'{name}.py'),
            template,
            osp.join(root, 'data'),
            base=base,
            neck=base)
    files['ckpt'] = save_teacher(files['teacher'],
                                 osp.join(root, 'teacher.pth'))
    return files


def skd_losses(pixel: dict = None, holistic_inputs: dict = None) -> dict:
    """The paper's three terms on the tiny PSPNets, with the recipe's
    inputs (configs/_base_/methods/skd.py)."""
    pixel = pixel or dict(type='mmkd.PixelWiseKDLoss', loss_weight=10.0)
    return dict(
        pixel=dict(
            pixel,
            student=LOGITS,
            teacher=LOGITS,
            inputs=dict(gt='batch.gt_sem_seg')),
        pair=dict(
            type='mmkd.PairWiseKDLoss',
            student=FEATS,
            teacher=FEATS,
            adapter=False,
            loss_weight=0.5,
            inputs=dict(valid_mask='batch.valid_mask')),
        holistic=dict(
            type='mmkd.HolisticKDLoss',
            student=LOGITS,
            teacher=LOGITS,
            loss_weight=0.1,
            inputs=holistic_inputs or {}))


def skd_config(files: dict,
               losses: dict = None,
               critic: dict = None,
               **model_kwargs) -> Config:
    """The student's config wrapped in a StructuredDistiller with the
    official critic (raw logits, SGD with its own poly decay to 0) and two
    optimizers."""
    cfg = Config.fromfile(files['student'])
    cfg.model = dict(
        type='mmkd.StructuredDistiller',
        student=cfg.model,
        teacher=dict(config=files['teacher'], checkpoint=files['ckpt']),
        losses=losses or skd_losses(),
        critic=critic
        or dict(type='mmkd.HolisticCritic', num_classes=3, base_channels=8),
        **model_kwargs)
    cfg.optim_wrapper = dict(
        constructor='mmkd.DistillerOptimWrapperConstructor',
        student=dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        critic=dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD', lr=4e-4, momentum=0.9, weight_decay=5e-4)))
    cfg.param_scheduler = dict(
        student=[],
        critic=[
            dict(
                type='PolyLR',
                eta_min=0.0,
                power=0.9,
                begin=0,
                end=cfg.train_cfg.max_iters,
                by_epoch=False)
        ])
    cfg.custom_imports = dict(imports=['mmkd'])
    cfg.custom_hooks = [dict(type='mmkd.ExactResumeHook')]
    return cfg
