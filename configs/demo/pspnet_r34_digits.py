# The teacher: PSPNet, ResNet-34-D8 at width 32, decode head 128, on the
# student's schedule (400 iterations): from its pretrained backbone it leads
# the student by far at 400 (see docs/digits.md), and 800 would not fit a
# run of a few minutes on 2 cores.
_base_ = './pspnet_r18_digits.py'
model = dict(
    backbone=dict(
        depth=34, base_channels=32, stem_channels=32,
        init_cfg=dict(
            checkpoint='data/digits/pretrained/resnet34_v1c_w32.pth')),
    decode_head=dict(in_channels=256, channels=128),
    auxiliary_head=dict(in_channels=128, channels=64))
