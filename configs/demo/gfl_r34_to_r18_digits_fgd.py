# Focal and global distillation on the FPN (configs/_base_/methods/fgd.py)
# on the GFL pair.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/fgd.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.fgd.losses}})
