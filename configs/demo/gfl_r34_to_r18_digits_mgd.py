# Masked generative distillation on the FPN (configs/_base_/methods/mgd.py) on the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/mgd.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.mgd.losses}})
