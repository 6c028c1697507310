# Channel-wise distillation on the FPN (configs/_base_/methods/cwd.py) on
# the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/cwd.py'
]
model = _base_.pop('cwd')
_base_.pop('cwd_logits')  # the logits recipe, for segmentors
