# The teacher: ResNet-34 at width 32.
_base_ = './_base_/faster_rcnn_digits.py'
model = dict(
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256]))
