# CrossKD (Wang et al., CVPR 2024) for ATSS heads as the official config
# sets it (jbwang1997/CrossKD, configs/crosskd/crosskd_r50_atss_r101_fpn_1x_
# coco.py, detector CrossKDATSS): the student's head features after its 3rd
# conv run through the rest of the teacher's head; the cross-head
# predictions learn the teacher's class scores (quality focal KD, beta 1,
# weighted by the student's label weights), its decoded boxes (GIoU,
# weighted by the teacher's max class score) and, at the student's
# positives, its centerness (sigmoid cross-entropy towards the teacher's
# sigmoid: the official CrossEntropyLoss(use_sigmoid=True)); all 1.0 and
# divided by the student's positives.
# The RetinaNet recipe (crosskd_retinanet.py) on the ATSS pairing, plus the
# centerness term.
_base_ = ['./crosskd_retinanet.py']
crosskd_atss = _base_.pop('crosskd_retinanet')
crosskd_atss.pairings.cross.type = 'mmkd.CrossKDATSSPairing'
crosskd_atss.losses.center_kd = dict(
    type='mmkd.SigmoidSoftCELoss', student='cross.centerness',
    teacher='cross.centerness', temperature=1.0, loss_weight=1.0,
    inputs=dict(avg_factor='cross.avg_factor'))
