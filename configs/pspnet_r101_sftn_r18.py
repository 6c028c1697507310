# SFTN (Park et al., NeurIPS 2021): a PSPNet R101-D8 teacher trained with
# PSPNet R18-D8 student branches after its stages 1-3, on Cityscapes
# 512x1024 with mmseg's 80k schedule. The exported work_dir/teacher.pth and
# teacher_config.py then replace the model-zoo teacher of the
# pspnet_r101_to_r18_* configs (--cfg-options model.teacher.checkpoint=...).
# Loss weights (1, 3, 1) and temperature 1 are mmkd.SFTNTeacher's defaults,
# from the public reimplementation; the paper's own are unverified.
_base_ = [
    'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/sftn_runtime.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SFTNTeacher',
    teacher='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    student='mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    branch_points=(1, 2, 3))
