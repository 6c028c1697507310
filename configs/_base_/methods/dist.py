# DIST (Huang et al., NeurIPS 2022) on segmentation logits, as its official
# segmentation code (hunto/DIST_KD, segmentation/train_kd.py) sets it:
# softmax without temperature, beta = gamma = 1, weight 1 on the final
# logits. The official code adds 0.4 x the same term on the auxiliary head's
# logits; mmkd's teacher runs only its decode path (an auxiliary head is
# a training-time branch), so that term is left out.
dist = dict(
    losses=dict(
        dist=dict(type='mmkd.DISTLoss', student='decode_head.conv_seg',
                  teacher='decode_head.conv_seg', beta=1.0, gamma=1.0,
                  tau=1.0, loss_weight=1.0)))
