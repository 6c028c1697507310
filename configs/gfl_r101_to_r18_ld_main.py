# LD on the main region only (no VLR term, no classification KD): the
# losses of mmdet's own recipe (mmdet::ld/ld_r18-gflv1-r101_fpn_1x_coco.py),
# for a like-for-like comparison with it (docs/gpu.md).
_base_ = './gfl_r101_to_r18_ld.py'
model = dict(
    pairings=dict(ld=dict(vlr=False)),
    losses=dict(_delete_=True, ld=_base_.model.losses.ld))
