# Channel-wise distillation on the logits (see _base_/methods/cwd.py):
# PSPNet R101-D8 teacher -> R18-D8 student, Cityscapes 512x1024, 80k iters.
# mmrazor reports 74.87 -> 75.54 mIoU for this pair and recipe.
_base_ = [
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/distill_runtime.py', './_base_/methods/cwd.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r101-d8_512x1024_80k_cityscapes/pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth'  # noqa
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
        checkpoint=teacher_ckpt),
    losses={{_base_.cwd_logits.losses}})
