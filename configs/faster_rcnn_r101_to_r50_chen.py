# The full recipe of Chen et al., NeurIPS 2017 at the R-CNN: hint on the FPN
# (gamma 0.5), class-weighted soft-label KD on the student's sampled RoIs
# (mu 0.5, background weight 1.5) and teacher-bounded regression (nu 0.5).
_base_ = './faster_rcnn_r101_to_r50_hint.py'
model = dict(
    # L_cls = mu * CE + (1 - mu) * L_soft: the student's own CE gets mu
    student=dict(roi_head=dict(bbox_head=dict(loss_cls=dict(loss_weight=0.5)))),
    pairings=dict(roi=dict(type='mmkd.RoIPairing')),
    losses=dict(
        soft_cls=dict(type='mmkd.WeightedSoftCELoss', student='roi.cls',
                      teacher='roi.cls', bg_weight=1.5, loss_weight=0.5),
        bounded_reg=dict(
            type='mmkd.BoundedRegressionLoss', student='roi.reg',
            teacher='roi.reg', margin=0.0, loss_weight=0.5,
            inputs=dict(target='roi.reg_targets', weight='roi.reg_weights'))))
