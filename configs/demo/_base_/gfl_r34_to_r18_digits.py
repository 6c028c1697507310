# The GFL pair on the digits set: the R18 student (its data and schedule
# too) and the R34 teacher, trained first with
#   python tools/train.py configs/demo/gfl_r34_digits.py
_base_ = ['../gfl_r18_digits.py', '../../_base_/distill_runtime.py']
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='{{fileDirname}}/../gfl_r34_digits.py',
        checkpoint='work_dirs/gfl_r34_digits/iter_800.pth'))
