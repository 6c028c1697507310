# Masked generative distillation on the FPN (see _base_/methods/mgd.py):
# RetinaNet X101-64x4d teacher (multi-scale 3x) -> R50 student, COCO, 2x
# schedule, as the official config; the MGD paper reports 37.4 -> 41.0 mAP
# (official code, with the student's neck and head initialised from the
# teacher's, which mmkd does not do).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    './_base_/distill_runtime.py', './_base_/methods/mgd.py'
]
# the distiller of the student (the first base's model), the teacher and MGD
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::retinanet/'
        'retinanet_x101-64x4d_fpn_ms-640-800-3x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
        'retinanet/retinanet_x101_64x4d_fpn_mstrain_3x_coco/retinanet_x101_'
        '64x4d_fpn_mstrain_3x_coco_20210719_051838-022c2187.pth'),
    **_base_.pop('mgd'))
_base_.pop('mgd_seg')  # the backbone recipe, for segmentors
# as the official config: gradient clipping
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
