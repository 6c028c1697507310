# Focal and global distillation on the FPN (see _base_/methods/fgd.py): GFL
# R101-FPN (ms 2x) teacher -> GFL R50-FPN student, COCO, 1x schedule, with
# the official gradient clipping (fgd_gfl_r101_distill_gfl_r50_fpn_1x_coco
# .py; the official student's neck and head start from the teacher's, which
# mmkd does not do).
_base_ = ['./_base_/gfl_r101_to_r50.py', './_base_/methods/fgd.py']
model = _base_.pop('fgd')
_base_.pop('fgd_two_stage')  # the two-stage recipe
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
