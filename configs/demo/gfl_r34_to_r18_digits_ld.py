# Localization distillation (configs/_base_/methods/ld.py) on the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/ld.py'
]
model = _base_.pop('ld')
