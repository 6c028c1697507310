# Hint imitation with 1x1 adapters on the FPN (Chen et al., NeurIPS 2017):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './_base_/distill_runtime.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_1x_coco/faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
        checkpoint=teacher_ckpt),
    losses=dict(
        # gamma = 0.5; Chen et al. adapt even when channels match
        hint=dict(type='mmkd.FeatureHintLoss', student='neck',
                  teacher='neck', adapter=True, loss_weight=0.5)))
