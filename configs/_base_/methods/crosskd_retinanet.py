# CrossKD (Wang et al., CVPR 2024) for RetinaNet heads as the official
# config sets it (jbwang1997/CrossKD, configs/crosskd/crosskd_r50_retinanet_
# r101_fpn_2x_coco.py, detector CrossKDRetinaNet): the student's head
# features after its 3rd conv run through the rest of the teacher's head;
# the cross-head predictions learn the teacher's class scores (quality focal
# KD, beta 1, weighted by the student's label weights) and its decoded
# boxes (GIoU, weighted by the teacher's max class score), both 1.0 and
# divided by the student's positives.
crosskd_retinanet = dict(
    pairings=dict(
        cross=dict(type='mmkd.CrossKDRetinaPairing',
                   reused_teacher_head_idx=3)),
    losses=dict(
        cls_kd=dict(type='mmkd.KDQualityFocalLoss', student='cross.cls',
                    teacher='cross.cls', beta=1.0, loss_weight=1.0,
                    inputs=dict(weight='cross.cls_weights',
                                avg_factor='cross.avg_factor')),
        bbox_kd=dict(type='mmdet.GIoULoss', student='cross.boxes',
                     teacher='cross.boxes', loss_weight=1.0,
                     inputs=dict(weight='cross.box_weights',
                                 avg_factor='cross.avg_factor'))))
