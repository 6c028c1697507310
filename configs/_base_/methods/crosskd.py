# CrossKD (Wang et al., CVPR 2024) for GFL-family heads as the official
# config sets it (jbwang1997/CrossKD, crosskd_r50_gflv1_r101-2x-ms_fpn_1x_
# coco.py): the student's head features after its 3rd conv run through the
# rest of the teacher's head; the cross-head predictions learn the teacher's
# class scores (quality focal KD, beta 1), box-edge distributions (KL, T 1,
# summed over bins, 3.0) and decoded boxes (GIoU, 2.0).
crosskd = dict(
    pairings=dict(
        cross=dict(type='mmkd.CrossKDPairing', reused_teacher_head_idx=3)),
    losses=dict(
        cls_kd=dict(type='mmkd.KDQualityFocalLoss', student='cross.cls',
                    teacher='cross.cls', beta=1.0, loss_weight=1.0,
                    inputs=dict(weight='cross.cls_weights',
                                avg_factor='cross.avg_factor')),
        # the official KL sums over the bins (class_reduction='sum', which
        # mmdet 3.3's KnowledgeDistillationKLDivLoss lacks): mmkd.KLDivLoss
        reg_kd=dict(type='mmkd.KLDivLoss', student='cross.corners',
                    teacher='cross.corners', temperature=1.0,
                    loss_weight=3.0,
                    inputs=dict(weight='cross.corner_weights',
                                avg_factor='cross.corner_avg_factor')),
        bbox_kd=dict(type='mmdet.GIoULoss', student='cross.boxes',
                     teacher='cross.boxes', loss_weight=2.0,
                     inputs=dict(weight='cross.box_weights',
                                 avg_factor='cross.box_avg_factor'))))
