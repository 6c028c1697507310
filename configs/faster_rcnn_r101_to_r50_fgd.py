# Focal and global distillation on FPN P2-P5 (see _base_/methods/fgd.py):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 2x schedule, with
# the official gradient clipping (fgd_faster_rcnn_r101_fpn_2x_distill_faster
# _rcnn_r50_fpn_2x_coco.py).
_base_ = ['./_base_/faster_rcnn_r101_to_r50_2x.py', './_base_/methods/fgd.py']
model = _base_.pop('fgd_two_stage')
_base_.pop('fgd')  # the one-stage recipe
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
