# The teacher: PSPNet, ResNet-34-D8 at width 32, decode head 128, trained
# twice as long as the student (see faster_rcnn_r34_digits.py).
_base_ = './pspnet_r18_digits.py'
model = dict(
    backbone=dict(
        depth=34, base_channels=32, stem_channels=32,
        init_cfg=dict(
            checkpoint='data/digits/pretrained/resnet34_v1c_w32.pth')),
    decode_head=dict(in_channels=256, channels=128),
    auxiliary_head=dict(in_channels=128, channels=64))
train_cfg = dict(max_iters=800, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=50, end=800,
         by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=200))
