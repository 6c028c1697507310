# MobileBERT's layer-wise transfer (Sun et al., ACL 2020) on transformer
# backbones: feature-map transfer on each student block's output tokens (a
# linear adapter where the widths differ) and attention transfer on its
# attention maps, each against a teacher block. The official layer-wise
# factors (google-research mobilebert, run_pretraining.py): 100 on the
# layer-normalised MSE, 5000 on the token means, 5 on their variances, 1 on
# the attention KL, all averaged over the transferred layers, so each loss
# here weighs 1 / (number of layer pairs).
#
# Layer pairs (stage s, student block i, teacher block t): where a teacher
# stage is deeper, student block i takes teacher block (i + 1) * n_t // n_s
# - 1, i.e. every (n_t / n_s)-th teacher block, ending at the last one.
#
# SegFormer MiT-B2 (3, 4, 6, 3 blocks) -> MiT-B0 (2, 2, 2, 2): 8 pairs. MiT
# attention is nn.MultiheadAttention's head-averaged weights, its second
# output ('...attn.attn[1]'); the heads (1, 2, 5, 8) are equal anyway.
mit_pairs = [(0, 0, 0), (0, 1, 2), (1, 0, 1), (1, 1, 3), (2, 0, 2), (2, 1, 5),
             (3, 0, 0), (3, 1, 2)]
mobilebert_mit = dict(
    losses={
        **{
            f'fmt_s{s}_b{i}': dict(
                type='mmkd.FeatureMapTransferLoss',
                student=f'backbone.layers.{s}.1.{i}',
                teacher=f'backbone.layers.{s}.1.{t}',
                loss_weight=1 / 8)
            for s, i, t in mit_pairs
        },
        **{
            f'at_s{s}_b{i}': dict(
                type='mmkd.AttentionTransferLoss',
                student=f'backbone.layers.{s}.1.{i}.attn.attn[1]',
                teacher=f'backbone.layers.{s}.1.{t}.attn.attn[1]',
                loss_weight=1 / 8)
            for s, i, t in mit_pairs
        },
    })
# Swin-S (2, 2, 18, 2 blocks) -> Swin-T (2, 2, 6, 2): 12 pairs, stage 3
# taking every third teacher block. Widths (96) and heads (3, 6, 12, 24) are
# equal; attention is the softmax of each window's attention, per head,
# compared window by window.
swin_pairs = [(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 1, 1), (2, 0, 2), (2, 1, 5),
              (2, 2, 8), (2, 3, 11), (2, 4, 14), (2, 5, 17), (3, 0, 0),
              (3, 1, 1)]
mobilebert_swin = dict(
    losses={
        **{
            f'fmt_s{s}_b{i}': dict(
                type='mmkd.FeatureMapTransferLoss',
                student=f'backbone.stages.{s}.blocks.{i}',
                teacher=f'backbone.stages.{s}.blocks.{t}',
                loss_weight=1 / 12)
            for s, i, t in swin_pairs
        },
        **{
            f'at_s{s}_b{i}': dict(
                type='mmkd.AttentionTransferLoss',
                student=f'backbone.stages.{s}.blocks.{i}.attn.w_msa.softmax',
                teacher=f'backbone.stages.{s}.blocks.{t}.attn.w_msa.softmax',
                loss_weight=1 / 12)
            for s, i, t in swin_pairs
        },
    })
# the pair tables are not config keys
del mit_pairs, swin_pairs
