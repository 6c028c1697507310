# CrossKD (see _base_/methods/crosskd.py): GFL R101-FPN (ms 2x) teacher ->
# GFL R50-FPN student, COCO, 1x schedule (lr 0.01, as the official config).
# The CrossKD paper reports 40.2 -> 43.7 mAP for this pair.
_base_ = ['./_base_/gfl_r101_to_r50.py', './_base_/methods/crosskd.py']
model = _base_.pop('crosskd')
