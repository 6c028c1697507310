# KD++ (ND + RoI KL) from the digits teacher to the digits student, the
# recipe of configs/faster_rcnn_r101_to_r50_nd.py. The teacher checkpoint is
# what tools/quickstart.py (or tools/train.py on the teacher) writes.
_base_ = ['./faster_rcnn_r18_digits.py', '../_base_/distill_runtime.py']
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='{{fileDirname}}/faster_rcnn_r34_digits.py',
        checkpoint='work_dirs/quickstart/teacher/teacher.pth'),
    pairings=dict(roi=dict(type='mmkd.RoIPairing')),
    losses=dict(
        kd=dict(type='mmdet.KnowledgeDistillationKLDivLoss', T=1,
                student='roi.cls', teacher='roi.cls', loss_weight=1.0),
        nd=dict(type='mmkd.NDLoss', student='roi.emb', teacher='roi.emb',
                loss_weight=1.5,  # the paper's weight for R18 students
                inputs=dict(labels='roi.labels',
                            centers='const.roi_centers'))))
custom_hooks = [
    dict(type='mmkd.ExactResumeHook'),
    dict(type='mmkd.StudentExportHook'),
    dict(type='mmkd.TeacherCentroidHook', num_iters=50),
]
# The first full quick start diverged (NaN from iteration ~70 at lr 0.04)
# without clipping; clip as OpenMMLab's distillation configs commonly do.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
