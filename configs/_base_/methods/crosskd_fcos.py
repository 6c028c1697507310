# CrossKD (Wang et al., CVPR 2024) for FCOS heads as the official config
# sets it (jbwang1997/CrossKD, configs/crosskd/crosskd_r50_fcos_r101-2x-ms_
# caffe_fpn_gn-head_2x_ms_coco.py, detector CrossKDFCOS): the student's head
# features after its 2nd conv run through the rest of the teacher's head;
# the cross-head predictions learn the teacher's class scores at every
# point (quality focal KD, beta 1, 0.4, unweighted) and its decoded boxes
# (IoU, log, 0.75, weighted by the teacher's max class score), both divided
# by the sum of the centerness targets of the student's positives (FCOS's
# own box-loss normaliser). Centerness is not distilled.
crosskd_fcos = dict(
    pairings=dict(
        cross=dict(type='mmkd.CrossKDFCOSPairing',
                   reused_teacher_head_idx=2)),
    losses=dict(
        cls_kd=dict(type='mmkd.KDQualityFocalLoss', student='cross.cls',
                    teacher='cross.cls', beta=1.0, loss_weight=0.4,
                    inputs=dict(avg_factor='cross.avg_factor')),
        bbox_kd=dict(type='mmdet.IoULoss', student='cross.boxes',
                     teacher='cross.boxes', mode='log', loss_weight=0.75,
                     inputs=dict(weight='cross.box_weights',
                                 avg_factor='cross.avg_factor'))))
