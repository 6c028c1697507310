# KD++ with TeKAP teacher perturbation (see _base_/methods/tekap.py):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = ['./faster_rcnn_r101_to_r50_nd.py', './_base_/methods/tekap.py']
model = _base_.pop('kdpp_tekap')  # merged into the KD++ config's distiller
