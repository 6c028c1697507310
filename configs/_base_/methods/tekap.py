# TeKAP (ICLR 2025) on top of KD++: the RoI-logit KL also sees 3 perturbed
# teacher views (alpha 0.1, sigma 1, weight 0.8 each) and a hint on the FPN
# sees one feature view (alpha 0.1, sigma 0.1), rescaled to the teacher's
# norm as CRD's L2-normalised view is (see mmkd.TeKAP, keep_norm). Leaves
# merge it into KD++'s distiller (model = _base_.pop('kdpp_tekap')): `kd` is
# replaced, `hint` added.
kdpp_tekap = dict(
    losses=dict(
        kd=dict(_delete_=True, type='mmkd.TeKAP', student='roi.cls',
                teacher='roi.cls', num_views=3, alpha=0.1, noise_std=1.0,
                view_weight=0.8,
                loss=dict(type='mmkd.KLDivLoss', temperature=1.0,
                          loss_weight=1.0)),
        hint=dict(type='mmkd.TeKAP', student='neck', teacher='neck',
                  num_views=1, alpha=0.1, noise_std=0.1, view_weight=1.0,
                  keep_norm=True,
                  loss=dict(type='mmkd.FeatureHintLoss', loss_weight=0.5))))
