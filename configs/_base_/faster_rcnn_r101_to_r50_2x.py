# Faster R-CNN R101-FPN teacher (mmdet model zoo, 2x, 39.8 mAP) for an
# R50-FPN student trained on COCO with mmdet's 2x schedule.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    './distill_runtime.py'
]
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
        'faster_rcnn/faster_rcnn_r101_fpn_2x_coco/'
        'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-'
        '1d2dac9c.pth'))
