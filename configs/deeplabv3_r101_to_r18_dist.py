# DIST on the logits (see _base_/methods/dist.py): DeepLabV3 R101-D8 teacher
# -> R18-D8 student, Cityscapes 512x1024, 80k iters. The DIST paper reports
# 74.21 -> 77.10 mIoU for this pair (its own training code and schedule).
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/distill_runtime.py', './_base_/methods/dist.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x1024_80k_cityscapes/deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmseg::deeplabv3/'
        'deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py',
        checkpoint=teacher_ckpt),
    losses={{_base_.dist.losses}})
