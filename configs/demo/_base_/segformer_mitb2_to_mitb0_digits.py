# The transformer pair on the digits set: the SegFormer MiT-B0-depth
# student at width 16 (its data and schedule too) and the MiT-B2-depth
# teacher at width 32, trained first with
#   python tools/train.py configs/demo/segformer_mitb2_digits.py
_base_ = ['../segformer_mitb0_digits.py', '../../_base_/distill_runtime.py']
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='{{fileDirname}}/../segformer_mitb2_digits.py',
        checkpoint='work_dirs/segformer_mitb2_digits/iter_400.pth'))
