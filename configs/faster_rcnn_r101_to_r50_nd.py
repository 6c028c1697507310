# KD++ for detection (Wang et al., 2023): ND on the RoI embeddings, towards
# the teacher's class centroids, plus KL on the RoI logits (T = 1), both on
# the student's sampled proposals; weights 1.0 / 1.0 (1.5 for R18 students).
_base_ = './_base_/faster_rcnn_r101_to_r50.py'
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    pairings=dict(roi=dict(type='mmkd.RoIPairing')),
    losses=dict(
        kd=dict(type='mmdet.KnowledgeDistillationKLDivLoss', T=1,
                student='roi.cls', teacher='roi.cls', loss_weight=1.0),
        nd=dict(type='mmkd.NDLoss', student='roi.emb', teacher='roi.emb',
                loss_weight=1.0,
                inputs=dict(labels='roi.labels',
                            centers='const.roi_centers'))))
custom_hooks = [
    dict(type='mmkd.ExactResumeHook'),
    dict(type='mmkd.StudentExportHook'),
    # teacher class means over 1000 training batches, before training
    dict(type='mmkd.TeacherCentroidHook', name='roi_centers', num_iters=1000),
]
