# Localization distillation (configs/_base_/methods/ld.py) on the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/ld.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    pairings={{_base_.ld.pairings}},
    losses={{_base_.ld.losses}})
