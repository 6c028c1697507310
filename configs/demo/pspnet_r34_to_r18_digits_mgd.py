# Masked generative distillation on the last backbone stage, with the official logit term (configs/_base_/methods/mgd.py) on the PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/mgd.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.mgd_seg.losses}})
