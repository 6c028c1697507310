# KD++ (ND + RoI KL; see _base_/methods/kdpp.py): Faster R-CNN R101-FPN
# teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = ['./_base_/faster_rcnn_r101_to_r50.py', './_base_/methods/kdpp.py']
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    pairings={{_base_.kdpp.pairings}},
    losses={{_base_.kdpp.losses}})
custom_hooks = _base_.custom_hooks + _base_.kdpp.hooks
