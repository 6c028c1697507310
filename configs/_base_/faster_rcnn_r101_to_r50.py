# Faster R-CNN R101-FPN teacher (mmdet model zoo, 1x, 39.4 mAP) for an
# R50-FPN student trained on COCO with mmdet's 1x schedule.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './distill_runtime.py'
]
teacher = dict(
    config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
    checkpoint='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
    'faster_rcnn_r101_fpn_1x_coco/faster_rcnn_r101_fpn_1x_coco_20200130-'
    'f513f705.pth')
