# KD++ for detection (Wang et al., 2023): ND on the RoI embeddings, towards
# the teacher's class centroids, plus KL on the RoI logits (T = 1, summed
# over classes and averaged over RoIs as the official code does; mmdet's
# KnowledgeDistillationKLDivLoss averages over classes, 1/81 of it on COCO),
# both on the student's sampled proposals; weights 1.0 / 1.0 (the official
# code uses ND 1.5 for R18 students). The centroids are the teacher's class
# means over 1000 training batches before training, then over every
# training step's proposals too (TeacherCentroidHook, running=True).
kdpp = dict(
    pairings=dict(roi=dict(type='mmkd.RoIPairing')),
    losses=dict(
        kd=dict(type='mmkd.KLDivLoss', temperature=1.0, student='roi.cls',
                teacher='roi.cls', loss_weight=1.0),
        nd=dict(type='mmkd.NDLoss', student='roi.emb', teacher='roi.emb',
                loss_weight=1.0,
                inputs=dict(labels='roi.labels',
                            centers='const.roi_centers'))))
# Only the method's own hook: leaves add it to distill_runtime.py's
# (custom_hooks = _base_.custom_hooks + _base_.pop('kdpp_hooks')).
# running: cumulative class means over every training step's proposals,
# as the official code estimates them
kdpp_hooks = [
    dict(type='mmkd.TeacherCentroidHook', name='roi_centers', num_iters=1000,
         running=True),
]
