# Masked generative distillation on the last backbone stage, with the
# official logit term (see _base_/methods/mgd.py): PSPNet R101-D8 teacher
# (40k) -> R18-D8 student, Cityscapes 512x1024, 80k iterations (the official
# student trains 40k iterations on 512x512 crops). The MGD paper reports
# 69.85 -> 73.63 mIoU.
_base_ = [
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/distill_runtime.py', './_base_/methods/mgd.py'
]
# the distiller of the student (the first base's model), the teacher and MGD;
# 512 student channels -> 2048 teacher channels through the adapter
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmseg::pspnet/pspnet_r101-d8_4xb2-40k_cityscapes-512x1024.py',
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/'
        'pspnet/pspnet_r101-d8_512x1024_40k_cityscapes/pspnet_r101-d8_'
        '512x1024_40k_cityscapes_20200604_232751-467e7cf4.pth'),
    **_base_.pop('mgd_seg'))
_base_.pop('mgd')  # the FPN recipe, for detectors
