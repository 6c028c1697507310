# Channel-wise distillation on the logits (see _base_/methods/cwd.py):
# PSPNet R101-D8 teacher -> R18-D8 student, Cityscapes 512x1024, 80k iters.
# mmrazor reports 74.87 -> 75.54 mIoU for this pair and recipe.
_base_ = ['./_base_/pspnet_r101_to_r18.py', './_base_/methods/cwd.py']
model = _base_.pop('cwd_logits')
_base_.pop('cwd')  # the FPN recipe, for detectors
