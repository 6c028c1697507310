# Channel-wise distillation on the FPN (see _base_/methods/cwd.py): GFL
# R101-FPN (ms 2x) teacher -> GFL R50-FPN student, COCO, 1x schedule, as
# mmrazor's cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco.py (which, despite
# its name, inherits the FPN recipe); mmrazor reports 40.2 -> 41.9 mAP.
_base_ = ['./_base_/gfl_r101_to_r50.py', './_base_/methods/cwd.py']
model = _base_.pop('cwd')
_base_.pop('cwd_logits')  # the logits recipe, for segmentors
