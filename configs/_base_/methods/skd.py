# Structured KD (Liu et al., CVPR 2019, arXiv 1903.04197) on an mmseg decode
# head: the three terms, the critic and its optimizer as in the official code
# (irfanICMLL/structure_knowledge_distillation, run_train_val.sh).
# The critic's num_classes is taken from the student's logits.
skd = dict(
    type='mmkd.StructuredDistiller',
    losses=dict(
        # lambda_pi 10 on the official sum over the 8 images of one GPU:
        # 10 x 8 on the per-pixel mean, for any split of 8 images
        pixel=dict(type='mmkd.PixelWiseKDLoss',
                   student='decode_head.conv_seg',
                   teacher='decode_head.conv_seg', temperature=1.0,
                   reduction='mean', loss_weight=80.0,
                   # ignore_index pixels (mmseg's padding too) count nothing
                   inputs=dict(gt='batch.gt_sem_seg')),
        # affinities: the channels may differ, no adapter
        pair=dict(type='mmkd.PairWiseKDLoss', student='decode_head.bottleneck',
                  teacher='decode_head.bottleneck', adapter=False,
                  pool_scale=0.5, loss_weight=0.5,
                  # both maps zeroed at ignore_index pixels
                  inputs=dict(valid_mask='batch.valid_mask')),
        holistic=dict(type='mmkd.HolisticKDLoss',
                      student='decode_head.conv_seg',
                      teacher='decode_head.conv_seg', loss_weight=0.1)),
    # WGAN-GP critic on the raw logits through its own BatchNorm; lambda_gp
    # 10; its whole loss times lambda_d 0.1
    critic=dict(type='mmkd.HolisticCritic', input_type='logits',
                base_channels=64),
    critic_steps=1,
    gp_weight=10.0,
    critic_loss_weight=0.1)
# The critic's own optimizer, beside the student's: a leaf config sets
# optim_wrapper = dict(student=_base_.optim_wrapper,
#                      critic=_base_.pop('skd_critic_optim_wrapper'))
# and gives the critic its own poly decay to 0 (power 0.9) over the run:
# param_scheduler = dict(student=[...], critic=[PolyLR]).
skd_critic_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=4e-4, momentum=0.9, weight_decay=5e-4))
