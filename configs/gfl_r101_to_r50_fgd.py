# Focal and global distillation on the FPN (see _base_/methods/fgd.py): GFL
# R101-FPN (ms 2x) teacher -> GFL R50-FPN student, COCO, 1x schedule, with
# the official gradient clipping (fgd_gfl_r101_distill_gfl_r50_fpn_1x_coco
# .py; the official student's neck and head start from the teacher's, which
# mmkd does not do).
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py', './_base_/distill_runtime.py',
    './_base_/methods/fgd.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        checkpoint=teacher_ckpt),
    losses={{_base_.fgd.losses}})
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
