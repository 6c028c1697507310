# The teacher: GFL, ResNet-34 at width 32, trained twice as long as the
# student (see faster_rcnn_r34_digits.py).
_base_ = './gfl_r18_digits.py'
model = dict(
    backbone=dict(
        depth=34, base_channels=32,
        init_cfg=dict(checkpoint='data/digits/pretrained/resnet34_w32.pth')),
    neck=dict(in_channels=[32, 64, 128, 256]))
train_cfg = dict(max_iters=800, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', by_epoch=False, milestones=[600], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=200))
