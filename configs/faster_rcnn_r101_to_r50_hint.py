# Hint imitation with 1x1 adapters on the FPN (Chen et al., NeurIPS 2017):
# Faster R-CNN R101-FPN teacher -> R50-FPN student, COCO, 1x schedule.
_base_ = './_base_/faster_rcnn_r101_to_r50.py'
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses=dict(
        # gamma = 0.5; Chen et al. adapt even when channels match
        hint=dict(type='mmkd.FeatureHintLoss', student='neck',
                  teacher='neck', adapter=True, loss_weight=0.5)))
