# Structured KD (Liu et al., CVPR 2019, arXiv 1903.04197) on an mmseg decode
# head: the paper's three terms and weights, the critic and its optimizer.
# Leaf configs use these through {{_base_.skd_losses}} etc.
logits, feats = 'decode_head.conv_seg', 'decode_head.bottleneck'
skd_losses = dict(
    pixel=dict(type='mmkd.PixelWiseKDLoss', student=logits, teacher=logits,
               temperature=1.0, loss_weight=10.0),
    # affinities: the channels may differ, no adapter
    pair=dict(type='mmkd.PairWiseKDLoss', student=feats, teacher=feats,
              adapter=False, pool_scale=0.5, loss_weight=0.5),
    holistic=dict(type='mmkd.HolisticKDLoss', student=logits, teacher=logits,
                  loss_weight=0.1))
# WGAN-GP critic on softmax maps conditioned on the image; lambda_gp = 10
skd_critic = dict(type='mmkd.HolisticCritic', num_classes=19,
                  in_image_channels=3, base_channels=64)
critic_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=4e-4, betas=(0.9, 0.99)))
# student and critic are DDP-wrapped (and synced) separately
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
