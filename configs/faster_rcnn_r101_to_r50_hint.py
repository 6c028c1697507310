# Hint imitation with 1x1 adapters on the FPN (Chen et al., NeurIPS 2017):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = ['./_base_/faster_rcnn_r101_to_r50.py', './_base_/methods/hint.py']
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.hint.losses}})
