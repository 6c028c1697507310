# SFTN (Park et al., NeurIPS 2021): a Faster R-CNN R101-FPN teacher trained
# with R50-FPN student branches after its stages 1-3, on COCO with mmdet's
# 1x schedule. Each branch runs the student's later stages, FPN and RoI head
# on the RoIs the teacher samples (see mmkd.SFTNTeacher). The exported
# work_dir/teacher.pth and teacher_config.py then replace the model-zoo
# teacher of the faster_rcnn_r101_to_r50_* configs
# (--cfg-options model.teacher.checkpoint=...). Loss weights (1, 3, 1) and
# temperature 1 are mmkd.SFTNTeacher's defaults, from the public
# reimplementation; the paper's own are unverified (docs/method_notes.md).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
    './_base_/sftn_runtime.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SFTNTeacher',
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    branch_points=(1, 2, 3))
