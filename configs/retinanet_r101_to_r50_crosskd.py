# CrossKD on RetinaNet heads (see _base_/methods/crosskd_retinanet.py):
# RetinaNet R101-FPN (2x) teacher -> R50-FPN student, COCO, 2x schedule.
# The CrossKD paper reports 37.4 -> 39.7 mAP for this pair.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    './_base_/distill_runtime.py', './_base_/methods/crosskd_retinanet.py'
]
# the distiller of the student (the first base's model), the teacher and
# the method
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
        'retinanet/retinanet_r101_fpn_2x_coco/'
        'retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth'),
    **_base_.pop('crosskd_retinanet'))
