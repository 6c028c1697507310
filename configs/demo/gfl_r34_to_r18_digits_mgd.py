# Masked generative distillation on the FPN (configs/_base_/methods/mgd.py)
# on the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/mgd.py'
]
model = _base_.pop('mgd')
_base_.pop('mgd_seg')  # the backbone recipe, for segmentors
