# Channel-wise distillation on the logits (configs/_base_/methods/cwd.py) on
# the PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/cwd.py'
]
model = _base_.pop('cwd_logits')
_base_.pop('cwd')  # the FPN recipe, for detectors
