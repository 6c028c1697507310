# KD++ (configs/_base_/methods/kdpp.py) on the digits pair; the centroids
# average 50 batches instead of 1000 (the digits set has 100 batches).
_base_ = [
    './_base_/faster_rcnn_r34_to_r18_digits.py', '../_base_/methods/kdpp.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    pairings={{_base_.kdpp.pairings}},
    losses={{_base_.kdpp.losses}})
custom_hooks = [
    dict(type='mmkd.ExactResumeHook'),
    dict(type='mmkd.StudentExportHook'),
    dict(type='mmkd.TeacherCheckHook'),
    dict(type='mmkd.TeacherCentroidHook', name='roi_centers', num_iters=50,
         running=True),
]
