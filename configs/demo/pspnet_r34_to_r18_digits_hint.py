# Hint imitation on the decode head (configs/_base_/methods/hint.py) on the
# PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/hint.py'
]
model = _base_.pop('decode_hint')
_base_.pop('hint')  # the FPN hint, for detectors
