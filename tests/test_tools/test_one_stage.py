"""Neck hint, TeKAP and dense soft-label KD on a one-stage detector
(RetinaNet), through the Runner."""
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from tiny_setups import DET_CONFIG, save_teacher, write_config

RETINA = DET_CONFIG.replace(
    "'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'",
    "'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'").split(
        'model = dict(')[0] + """
model = dict(
    backbone=dict(depth=18, base_channels={base}, init_cfg=None,
                  frozen_stages=-1, norm_eval=False),
    neck=dict(in_channels=[{base}, {base2}, {base4}, {base8}],
              out_channels={neck}),
    bbox_head=dict(num_classes=3, in_channels={neck}, feat_channels={neck},
                   stacked_convs=1))
""" + DET_CONFIG.split('train_pipeline = [', 1)[1].join(
            ['train_pipeline = [', ''])


def test_hint_tekap_and_dense_kd_on_retinanet(det_files, tmp_path):
    data = osp.join(det_files['root'], 'data')
    student = write_config(str(tmp_path / 's.py'), RETINA, data, 8, 16)
    teacher = write_config(str(tmp_path / 't.py'), RETINA, data, 16, 32)
    ckpt = save_teacher(teacher, str(tmp_path / 't.pth'))
    cfg = Config.fromfile(student)
    cfg.model = dict(
        type='mmkd.SingleTeacherDistiller',
        student=cfg.model,
        teacher=dict(config=teacher, checkpoint=ckpt),
        losses=dict(
            hint=dict(
                type='mmkd.FeatureHintLoss',
                student='neck',
                teacher='neck',
                loss_weight=0.5),
            tekap=dict(
                type='mmkd.TeKAP',
                student='neck',
                teacher='neck',
                num_views=1,
                alpha=0.1,
                noise_std=0.1,
                loss=dict(type='mmkd.FeatureHintLoss')),
            # the classifier conv runs once per level: 5 levels of logits
            dense_kd=dict(
                type='mmkd.SigmoidSoftCELoss',
                student='bbox_head.retina_cls',
                teacher='bbox_head.retina_cls')))
    cfg.custom_imports = dict(imports=['mmkd'])
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    hint = scalars['train/distill.hint'].current()
    tekap = scalars['train/distill.tekap'].current()
    assert hint > 0
    # one view at alpha 0.1: between 1x and 2x the clean hint (x2 weight)
    assert 2 * hint < tekap < 4 * hint
    assert len(runner.model.adapters['hint'].convs) == 5  # P3-P7
    assert scalars['train/distill.dense_kd'].current() > 0
    assert 'dense_kd' not in runner.model.adapters  # 9 anchors x 3 classes
    assert 'val/time' in scalars  # validated (no box clears the threshold)
