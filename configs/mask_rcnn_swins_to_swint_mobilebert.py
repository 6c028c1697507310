# MobileBERT's feature-map and attention transfer (see
# _base_/methods/mobilebert.py): Mask R-CNN Swin-S teacher (mmdet model zoo,
# 3x ms-crop, 48.2 box AP) -> Swin-T student (46.0 box AP trained alone),
# COCO, mmdet's 3x multi-scale-crop schedule. No published detection figure
# exists for this recipe; its weights are the official layer-wise ones.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
    './_base_/distill_runtime.py', './_base_/methods/mobilebert.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/swin/'
        'mask_rcnn_swin-s-p4-w7_fpn_fp16_ms-crop-3x_coco/mask_rcnn_swin-s-p4-'
        'w7_fpn_fp16_ms-crop-3x_coco_20210903_104808-b92c91f1.pth'),
    **_base_.pop('mobilebert_swin'))
_base_.pop('mobilebert_mit')  # the MiT recipe, for segmentors
