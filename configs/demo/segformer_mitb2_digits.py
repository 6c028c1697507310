# The transformer teacher: SegFormer with MiT-B2's depth (3, 4, 6, 3
# blocks), MiT-B0's width (32) and the heads of both (1, 2, 5, 8), decode
# head 128, on the student's schedule. Heads per stage equal the student's,
# so attention maps align head by head.
_base_ = './segformer_mitb0_digits.py'
model = dict(
    backbone=dict(
        embed_dims=32, num_layers=[3, 4, 6, 3],
        init_cfg=dict(
            checkpoint='data/digits/pretrained/mit_b2_w32.pth')),
    decode_head=dict(in_channels=[32, 64, 160, 256], channels=128))
