# CrossKD (see _base_/methods/crosskd.py): GFL R101-FPN (ms 2x) teacher ->
# GFL R50-FPN student, COCO, 1x schedule (lr 0.01, as the official config).
# The CrossKD paper reports 40.2 -> 43.7 mAP for this pair.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py', './_base_/distill_runtime.py',
    './_base_/methods/crosskd.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        checkpoint=teacher_ckpt),
    pairings={{_base_.crosskd.pairings}},
    losses={{_base_.crosskd.losses}})
