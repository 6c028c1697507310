# Masked generative distillation on the last backbone stage, with the
# official logit term (configs/_base_/methods/mgd.py), on the PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/mgd.py'
]
model = _base_.pop('mgd_seg')
_base_.pop('mgd')  # the FPN recipe, for detectors
