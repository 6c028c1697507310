# NetAug (Cai et al., ICLR 2022; official code: mit-han-lab/tinyml,
# netaug/): the tiny model also trains inside wider models that share its
# weights, L = L(base) + alpha * L(augmented), one width drawn per step.
# alpha = 1 and the widths 1.8x and 2.6x of the official runs of the 0.35
# MobileNets. A leaf wraps its model (a plain one or a distiller) and names
# the channel counts to widen, those of the backbone and of what reads it:
#   model = dict(_base_.pop('netaug'), _delete_=True, model=_base_.model,
#                width_keys=_base_.pop('netaug_width_keys').detector)
# The official runs stop augmenting widths for the last 75 of 155 epochs;
# leaves add dict(type='mmkd.NetAugHook', stop=<about half the schedule>).
netaug = dict(type='mmkd.NetAug', width_mults=[1.8, 2.6], alpha=1.0)
netaug_width_keys = dict(
    # mmseg's ResNetV1c (stem and stages) and the decode and auxiliary
    # heads that read it (DeepLabV3, FCN, PSPNet: a concatenation of the
    # widened input with other maps nests piece by piece)
    segmentor=[
        'backbone.base_channels', 'backbone.stem_channels',
        'decode_head.in_channels', 'auxiliary_head.in_channels'
    ],
    # mmdet's ResNet (its stem follows base_channels) and the FPN's inputs
    detector=['backbone.base_channels', 'neck.in_channels'])
# what a leaf without a distiller adds to the tiny model's runtime (a
# distiller config already has distill_runtime.py's)
netaug_runtime = dict(
    custom_imports=dict(imports=['mmkd'], allow_failed_imports=False),
    custom_hooks=[
        dict(type='mmkd.ExactResumeHook'),
        dict(type='mmkd.StudentExportHook'),
    ])
