# DIST on the logits (configs/_base_/methods/dist.py) on the PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/dist.py'
]
model = _base_.pop('dist')
