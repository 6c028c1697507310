# KD++ (ND + RoI KL; see _base_/methods/kdpp.py): Faster R-CNN R101-FPN
# teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = ['./_base_/faster_rcnn_r101_to_r50.py', './_base_/methods/kdpp.py']
model = _base_.pop('kdpp')
custom_hooks = _base_.custom_hooks + _base_.pop('kdpp_hooks')
