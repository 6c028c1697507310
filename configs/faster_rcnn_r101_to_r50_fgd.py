# Focal and global distillation on FPN P2-P5 (see _base_/methods/fgd.py):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 2x schedule, with
# the official gradient clipping (fgd_faster_rcnn_r101_fpn_2x_distill_faster
# _rcnn_r50_fpn_2x_coco.py).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    './_base_/distill_runtime.py', './_base_/methods/fgd.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
        checkpoint=teacher_ckpt),
    losses={{_base_.fgd_two_stage.losses}})
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
