# KD++ (configs/_base_/methods/kdpp.py) on the digits pair.
_base_ = [
    './_base_/faster_rcnn_r34_to_r18_digits.py', '../_base_/methods/kdpp.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    pairings={{_base_.kdpp.pairings}},
    losses={{_base_.kdpp.losses}})
# the centroids over 50 batches (the digits set has 100)
custom_hooks = _base_.custom_hooks + [
    dict(_base_.kdpp.hooks[0], num_iters=50)
]
