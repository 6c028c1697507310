# The full recipe of Chen et al., NeurIPS 2017 (see _base_/methods/chen.py):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = ['./faster_rcnn_r101_to_r50_hint.py', './_base_/methods/chen.py']
model = _base_.pop('chen')  # merged into the hint config's distiller
