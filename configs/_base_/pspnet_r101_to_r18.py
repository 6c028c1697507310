# PSPNet R101-D8 teacher (mmseg model zoo, 80k) for an R18-D8 student on
# Cityscapes 512x1024 with mmseg's 80k schedule.
_base_ = [
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './distill_runtime.py'
]
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/'
        'pspnet_r101-d8_512x1024_80k_cityscapes/pspnet_r101-d8_512x1024_80k_'
        'cityscapes_20200606_112211-e1e1100f.pth'))
