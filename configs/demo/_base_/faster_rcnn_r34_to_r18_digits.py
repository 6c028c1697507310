# The Faster R-CNN pair on the digits set: the R18 student (its data and
# schedule too) and the R34 teacher, trained first with
#   python tools/train.py configs/demo/faster_rcnn_r34_digits.py
# which writes the checkpoint named here (tools/quickstart.py and
# tools/benchmark_methods.py pass their own).
_base_ = ['../faster_rcnn_r18_digits.py', '../../_base_/distill_runtime.py']
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='{{fileDirname}}/../faster_rcnn_r34_digits.py',
        checkpoint='work_dirs/faster_rcnn_r34_digits/iter_800.pth'))
