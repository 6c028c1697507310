# GFL R101-FPN teacher (mmdet model zoo, multi-scale 2x) for a GFL R50-FPN
# student trained on COCO with mmdet's 1x schedule (lr 0.01).
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py', './distill_runtime.py']
# the distiller of the student (the first base's model) and the teacher; a
# leaf merges its method in: model = _base_.pop('<method>')
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
        'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_'
        '200126-dd12f847.pth'))
