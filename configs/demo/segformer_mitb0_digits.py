# The transformer student: SegFormer with MiT-B0's depth (2, 2, 2, 2 blocks)
# and heads (1, 2, 5, 8) at half its width (16), decode head 64, plain BN.
# The backbone starts from digit classification (python
# tools/pretrain_digits.py writes data/digits/pretrained/); train from
# scratch with --cfg-options model.backbone.init_cfg=None.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    './_base_/digits_segmentation.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
# background is 94 % of the pixels: the PSPNet pair's quarter weight
class_weight = [0.25] + [1.0] * 10
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(
        embed_dims=16,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/digits/pretrained/mit_b0_w16.pth')),
    decode_head=dict(in_channels=[16, 32, 80, 128], channels=64,
                     num_classes=11, norm_cfg=norm_cfg,
                     loss_decode=dict(class_weight=class_weight)))
# SegFormer's optimiser (AdamW, weight decay 0.01, none on norms and
# position blocks, the head at 10x), at a learning rate for 400 iterations
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-4, betas=(0.9, 0.999),
                   weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'pos_block': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
        'head': dict(lr_mult=10.)
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=400,
         by_epoch=False)
]
