# Hint imitation on the FPN with 1x1 adapters (Chen et al., NeurIPS 2017):
# gamma = 0.5; Chen et al. adapt even when the channels match.
hint = dict(
    losses=dict(
        hint=dict(type='mmkd.FeatureHintLoss', student='neck',
                  teacher='neck', adapter=True, loss_weight=0.5)))
# The same on a segmentor's decode head (e.g. PSPNet's pyramid-pooling
# output), adapted to the teacher's channels when they differ.
decode_hint = dict(
    losses=dict(
        hint=dict(type='mmkd.FeatureHintLoss',
                  student='decode_head.bottleneck',
                  teacher='decode_head.bottleneck', loss_weight=0.5)))
