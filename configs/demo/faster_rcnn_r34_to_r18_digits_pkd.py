# PKD on the FPN (configs/_base_/methods/pkd.py) on the Faster R-CNN pair.
_base_ = [
    './_base_/faster_rcnn_r34_to_r18_digits.py', '../_base_/methods/pkd.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.pkd.losses}})
