# Hint imitation with 1x1 adapters on the FPN (Chen et al., NeurIPS 2017):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = ['./_base_/faster_rcnn_r101_to_r50.py', './_base_/methods/hint.py']
model = _base_.pop('hint')
_base_.pop('decode_hint')  # the decode-head hint, for segmentors
