# Localization distillation (see _base_/methods/ld.py): GFL R101-FPN (ms 2x)
# teacher -> GFL R18-FPN student, COCO, 1x schedule.
_base_ = [
    './_base_/gfl_r18_fpn_1x_coco.py', './_base_/distill_runtime.py',
    './_base_/methods/ld.py'
]
# the distiller of the student (the first base's model), the teacher and LD
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
        'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_'
        '200126-dd12f847.pth'),
    **_base_.pop('ld'))
