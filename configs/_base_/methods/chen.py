# The full recipe of Chen et al., NeurIPS 2017, on top of the hint: class-
# weighted soft-label KD (mu 0.5, background weight 1.5) and teacher-bounded
# regression (nu 0.5, margin 0; normalised like the student's box loss it is
# added to, paper Eq. 1), at the R-CNN on the student's sampled RoIs
# and at the RPN on the student's sampled anchors. Leaves merge the block
# into the hint's distiller (model = _base_.pop('chen')): `student`
# (L_cls = mu * CE + (1 - mu) * L_soft: the student's own CE gets mu) into
# the student, `pairings` and `losses` beside the hint's.
chen = dict(
    student=dict(
        rpn_head=dict(loss_cls=dict(loss_weight=0.5)),
        roi_head=dict(bbox_head=dict(loss_cls=dict(loss_weight=0.5)))),
    pairings=dict(
        rpn=dict(type='mmkd.RPNPairing'), roi=dict(type='mmkd.RoIPairing')),
    losses=dict(
        soft_cls=dict(type='mmkd.WeightedSoftCELoss', student='roi.cls',
                      teacher='roi.cls', bg_weight=1.5, loss_weight=0.5),
        bounded_reg=dict(
            type='mmkd.BoundedRegressionLoss', student='roi.reg',
            teacher='roi.reg', margin=0.0, loss_weight=0.5,
            inputs=dict(target='roi.reg_targets', weight='roi.reg_weights',
                        avg_factor='roi.avg_factor')),
        rpn_soft_cls=dict(type='mmkd.WeightedSoftCELoss', student='rpn.cls',
                          teacher='rpn.cls', bg_weight=1.5, loss_weight=0.5),
        rpn_bounded_reg=dict(
            type='mmkd.BoundedRegressionLoss', student='rpn.reg',
            teacher='rpn.reg', margin=0.0, loss_weight=0.5,
            inputs=dict(target='rpn.reg_targets', weight='rpn.reg_weights',
                        avg_factor='rpn.avg_factor'))))
