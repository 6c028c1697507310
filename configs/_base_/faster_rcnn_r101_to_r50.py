# Faster R-CNN R101-FPN teacher (mmdet model zoo, 1x, 39.4 mAP) for an
# R50-FPN student trained on COCO with mmdet's 1x schedule.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './distill_runtime.py'
]
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
        'faster_rcnn/faster_rcnn_r101_fpn_1x_coco/'
        'faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth'))
