# The student: PSPNet, ResNet-18-D8 (V1c) at width 16, decode head 64, plain
# BN (SyncBN needs a process group). The backbone starts from digit
# classification (python tools/pretrain_digits.py writes
# data/digits/pretrained/); train from scratch with
# --cfg-options model.backbone.init_cfg=None.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py',
    './_base_/digits_segmentation.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
# Background is 94 % of the pixels, and the strokes of a 18-40 px digit
# (2-5 px wide, 44 % of its box) are thinner than the 8-pixel cells of the
# stride-8 logits: in every cell background is the likelier class, and with
# equal weights the model predicts background everywhere (mIoU 8.57, the
# background IoU / 11). A quarter weight on background makes a cell whose
# strokes cover more than a fifth of it predict the digit.
class_weight = [0.25] + [1.0] * 10
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(
        depth=18, base_channels=16, stem_channels=16, norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/digits/pretrained/resnet18_v1c_w16.pth')),
    decode_head=dict(in_channels=128, channels=64, num_classes=11,
                     norm_cfg=norm_cfg,
                     loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(in_channels=64, channels=32, num_classes=11,
                        norm_cfg=norm_cfg,
                        loss_decode=dict(class_weight=class_weight)))
