# CrossKD on ATSS heads (see _base_/methods/crosskd_atss.py): ATSS R101-FPN
# teacher -> R50-FPN student, COCO, 1x schedule.
# The CrossKD paper reports 39.4 -> 41.8 mAP for this pair.
_base_ = [
    'mmdet::atss/atss_r50_fpn_1x_coco.py',
    './_base_/distill_runtime.py', './_base_/methods/crosskd_atss.py'
]
# the distiller of the student (the first base's model), the teacher and
# the method
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::atss/atss_r101_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
        'atss/atss_r101_fpn_1x_coco/'
        'atss_r101_fpn_1x_20200825-dfcadd6f.pth'),
    **_base_.pop('crosskd_atss'))
