# CrossKD on FCOS heads (see _base_/methods/crosskd_fcos.py): FCOS R101-caffe-
# FPN (GN head, ms 2x) teacher -> R50-caffe student, COCO, ms 2x schedule.
# The CrossKD paper reports 38.5 -> 41.1 mAP for this pair.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    './_base_/distill_runtime.py', './_base_/methods/crosskd_fcos.py'
]
# the distiller of the student (the first base's model), the teacher and
# the method
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
        'fcos/fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco/'
        'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco-511424d6.pth'),
    **_base_.pop('crosskd_fcos'))
