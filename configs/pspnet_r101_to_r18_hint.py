# Hint imitation with a 1x1 adapter on the pyramid-pooling output:
# PSPNet R101-D8 teacher -> R18-D8 student, Cityscapes 512x1024, 80k iters.
_base_ = ['./_base_/pspnet_r101_to_r18.py', './_base_/methods/hint.py']
# 128 student channels -> 512 teacher channels through the adapter
model = _base_.pop('decode_hint')
_base_.pop('hint')  # the FPN hint, for detectors
