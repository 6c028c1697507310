# The student: Faster R-CNN, ResNet-18 at width 16, FPN 64, anchors sized for
# 6-40 px digits. The backbone starts from digit classification
# (python tools/pretrain_digits.py writes data/digits/pretrained/); train
# from scratch with --cfg-options model.backbone.init_cfg=None.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './_base_/digits_detection.py'
]
model = dict(
    backbone=dict(
        depth=18, base_channels=16, frozen_stages=-1, norm_eval=False,
        init_cfg=dict(type='Pretrained',
                      checkpoint='data/digits/pretrained/resnet18_w16.pth')),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4], strides=[4, 8, 16, 32,
                                                            64])),
    roi_head=dict(
        # 2x2 samples per bin: mmcv's CPU RoIAlign dominated the step with
        # the adaptive default (sampling_ratio=0)
        bbox_roi_extractor=dict(
            out_channels=64, roi_layer=dict(sampling_ratio=2)),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=10)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),  # 2-5 digits an image
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200),
                  rcnn=dict(max_per_img=20)))
