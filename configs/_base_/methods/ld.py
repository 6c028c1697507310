# Localization distillation (Zheng et al., CVPR 2022) with the valuable
# localization region and main-region classification KD of the official
# code (HikariTJU/LD). Drop ld_valuable and kd_cls (and vlr=True) for
# mmdet's LD. (mmengine logs any key ending in 'lr' as a learning rate.)
ld = dict(
    pairings=dict(ld=dict(type='mmkd.GFLPairing', vlr=True)),
    losses=dict(
        # main region: positives, each edge weighted by the max class score
        ld=dict(type='mmkd.LDLoss', student='ld.corners',
                teacher='ld.corners', inputs=dict(weight='ld.weights'),
                temperature=10, loss_weight=0.25),
        # valuable localization region, weighted by IoU
        ld_valuable=dict(type='mmkd.LDLoss', student='ld.vlr_corners',
                         teacher='ld.vlr_corners',
                         inputs=dict(weight='ld.vlr_weights'),
                         temperature=10, avg_factor=16.0, loss_weight=0.25),
        # main-region classification KD, averaged per level
        kd_cls=dict(type='mmkd.LDLoss', student='ld.cls', teacher='ld.cls',
                    inputs=dict(weight='ld.cls_weights'), temperature=2,
                    avg_factor=1.0, loss_weight=10.0)))
