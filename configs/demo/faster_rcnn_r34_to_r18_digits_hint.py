# Hint imitation (configs/_base_/methods/hint.py) on the digits pair.
_base_ = [
    './_base_/faster_rcnn_r34_to_r18_digits.py', '../_base_/methods/hint.py'
]
model = _base_.pop('hint')
_base_.pop('decode_hint')  # the decode-head hint, for segmentors
