# GFL with a ResNet-18 backbone, COCO, 1x: the student of mmdet's LD recipe
# (mmdet::ld/ld_r18-gflv1-r101_fpn_1x_coco.py), which mmdet ships no plain
# GFL config for.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
