# Channel-wise distillation on the FPN (see _base_/methods/cwd.py): GFL
# R101-FPN (ms 2x) teacher -> GFL R50-FPN student, COCO, 1x schedule, as
# mmrazor's cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco.py (which, despite
# its name, inherits the FPN recipe); mmrazor reports 40.2 -> 41.9 mAP.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py', './_base_/distill_runtime.py',
    './_base_/methods/cwd.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        checkpoint=teacher_ckpt),
    losses={{_base_.cwd.losses}})
