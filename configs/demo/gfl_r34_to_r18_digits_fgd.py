# Focal and global distillation on the FPN (configs/_base_/methods/fgd.py)
# on the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/fgd.py'
]
model = _base_.pop('fgd')
_base_.pop('fgd_two_stage')  # the two-stage recipe
