# SFTN (Park et al., NeurIPS 2021): a GFL R101-FPN teacher trained with GFL
# R18-FPN student branches after its stages 1-3, on COCO with the teacher's
# own multi-scale 2x schedule. The exported work_dir/teacher.pth and
# teacher_config.py then replace the model-zoo teacher of
# gfl_r101_to_r18_ld.py (--cfg-options model.teacher.checkpoint=...).
# Loss weights (1, 3, 1) and temperature 1 are mmkd.SFTNTeacher's defaults,
# from the public reimplementation; the paper's own are unverified.
_base_ = ['mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', './_base_/sftn_runtime.py']
model = dict(
    _delete_=True,
    type='mmkd.SFTNTeacher',
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    student='{{fileDirname}}/_base_/gfl_r18_fpn_1x_coco.py',
    branch_points=(1, 2, 3))
