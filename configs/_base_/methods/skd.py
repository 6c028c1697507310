# Structured KD (Liu et al., CVPR 2019, arXiv 1903.04197) on an mmseg decode
# head: the paper's three terms and weights, the critic and its optimizer.
# The critic's num_classes is taken from the student's logits.
skd = dict(
    losses=dict(
        pixel=dict(type='mmkd.PixelWiseKDLoss',
                   student='decode_head.conv_seg',
                   teacher='decode_head.conv_seg', temperature=1.0,
                   loss_weight=10.0),
        # affinities: the channels may differ, no adapter
        pair=dict(type='mmkd.PairWiseKDLoss', student='decode_head.bottleneck',
                  teacher='decode_head.bottleneck', adapter=False,
                  pool_scale=0.5, loss_weight=0.5),
        holistic=dict(type='mmkd.HolisticKDLoss',
                      student='decode_head.conv_seg',
                      teacher='decode_head.conv_seg', loss_weight=0.1)),
    # WGAN-GP critic on softmax maps conditioned on the image; lambda_gp 10
    critic=dict(type='mmkd.HolisticCritic', in_image_channels=3,
                base_channels=64),
    critic_steps=1,
    gp_weight=10.0,
    critic_optim_wrapper=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=4e-4, betas=(0.9, 0.99))))
# student and critic are DDP-wrapped (and synced) separately
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
