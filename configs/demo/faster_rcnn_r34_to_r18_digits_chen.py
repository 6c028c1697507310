# The full recipe of Chen et al. (configs/_base_/methods/chen.py) on the
# digits pair.
_base_ = [
    './faster_rcnn_r34_to_r18_digits_hint.py', '../_base_/methods/chen.py'
]
model = dict(
    student={{_base_.chen.student}},
    pairings={{_base_.chen.pairings}},
    losses={{_base_.chen.losses}})
