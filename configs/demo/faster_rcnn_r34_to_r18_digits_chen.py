# The full recipe of Chen et al. (configs/_base_/methods/chen.py) on the
# digits pair.
_base_ = [
    './faster_rcnn_r34_to_r18_digits_hint.py', '../_base_/methods/chen.py'
]
model = _base_.pop('chen')  # merged into the hint config's distiller
