# PKD on FPN P2-P5 (see _base_/methods/pkd.py): Faster R-CNN R101-FPN
# teacher -> R50-FPN student, COCO, 2x schedule, as PKD's official config in
# mmrazor, which reports 38.4 -> 40.3 box mAP.
_base_ = ['./_base_/faster_rcnn_r101_to_r50_2x.py', './_base_/methods/pkd.py']
model = _base_.pop('pkd')
