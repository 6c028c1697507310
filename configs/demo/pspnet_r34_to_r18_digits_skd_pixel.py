# Structured KD's pixel-wise term alone (configs/_base_/methods/skd.py) on
# the PSPNet pair: an ablation of pspnet_r34_to_r18_digits_skd.py.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/skd.py'
]
model = dict(
    _delete_=True,
    type='mmkd.StructuredDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses=dict(pixel={{_base_.skd.losses.pixel}}))
