# Masked generative distillation (Yang et al., ECCV 2022) as its official
# configs (yzd-v/MGD) set it. The generation blocks take the teacher's
# width from the teacher at build time.
# Detection: one loss per FPN output, each with its own generation block,
# alpha_mgd 2e-5, lambda_mgd 0.65 (retina_rx101_64x4d_distill_retina_r50_fpn_
# 2x_coco.py; five levels, as RetinaNet's and GFL's FPNs have).
mgd = dict(
    losses={
        f'mgd_fpn{i}': dict(type='mmkd.MGDLoss',
                            student=f'neck.fpn_convs.{i}.conv',
                            teacher=f'neck.fpn_convs.{i}.conv',
                            lambda_mgd=0.65, loss_weight=2e-5)
        for i in range(5)
    })
# Segmentation: the backbone's last stage, lambda_mgd 0.75, through a 1x1
# adapter where the widths differ (the official `align`), plus the CWD term
# on the logits that the official segmentation distiller always adds
# (use_logit=True: tau 4, weight 3; psp_r101_distill_psp_r18_40k_512x512_
# city.py).
mgd_seg = dict(
    losses=dict(
        mgd=dict(type='mmkd.MGDLoss', student='backbone.layer4',
                 teacher='backbone.layer4', lambda_mgd=0.75,
                 loss_weight=2e-5),
        cwd=dict(type='mmkd.ChannelWiseDivergence',
                 student='decode_head.conv_seg',
                 teacher='decode_head.conv_seg', tau=4.0, loss_weight=3.0)))
