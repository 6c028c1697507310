# Channel-wise distillation (Shu et al., ICCV 2021) with mmrazor's recipes,
# the reference its users know: tau 1; on every FPN level, weight 10
# (cwd_fpn_*_1x_coco.py); on segmentation logits, weight 5
# (cwd_logits_pspnet_r101_d8_pspnet_r18_d8_512x1024_cityscapes_80k.py).
cwd = dict(
    losses=dict(
        cwd=dict(type='mmkd.ChannelWiseDivergence', student='neck',
                 teacher='neck', tau=1.0, loss_weight=10.0)))
cwd_logits = dict(
    losses=dict(
        cwd=dict(type='mmkd.ChannelWiseDivergence',
                 student='decode_head.conv_seg',
                 teacher='decode_head.conv_seg', tau=1.0, loss_weight=5.0)))
