# Focal and global distillation (Yang et al., CVPR 2022) as its official
# configs (yzd-v/FGD) set it: one loss per FPN output, each with its own
# GcBlocks (width taken from the teacher at build time), temperature 0.5,
# reading the ground-truth boxes and each image's img_shape (__inputs:
# mmengine drops names starting with two underscores from the config).
__inputs = dict(gt_bboxes='batch.gt_bboxes',
                data_samples='batch.data_samples')
# One-stage detectors, five levels (fgd_gfl_r101_distill_gfl_r50_fpn_1x_coco
# .py, and RetinaNet's): alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6.
fgd = dict(
    losses={
        f'fgd_fpn{i}': dict(type='mmkd.FGDLoss',
                            student=f'neck.fpn_convs.{i}.conv',
                            teacher=f'neck.fpn_convs.{i}.conv', temp=0.5,
                            alpha_fgd=1e-3, beta_fgd=5e-4, gamma_fgd=5e-4,
                            lambda_fgd=5e-6, inputs=__inputs)
        for i in range(5)
    })
# Faster R-CNN, P2-P5 (fgd_faster_rcnn_r101_fpn_2x_distill_faster_rcnn_r50_
# fpn_2x_coco.py): alpha 5e-5, beta 2.5e-5, gamma 5e-5, lambda 5e-7.
fgd_two_stage = dict(
    losses={
        f'fgd_fpn{i}': dict(type='mmkd.FGDLoss',
                            student=f'neck.fpn_convs.{i}.conv',
                            teacher=f'neck.fpn_convs.{i}.conv', temp=0.5,
                            alpha_fgd=5e-5, beta_fgd=2.5e-5, gamma_fgd=5e-5,
                            lambda_fgd=5e-7, inputs=__inputs)
        for i in range(4)
    })
