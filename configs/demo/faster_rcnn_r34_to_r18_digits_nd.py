# KD++ (configs/_base_/methods/kdpp.py) on the digits pair.
_base_ = [
    './_base_/faster_rcnn_r34_to_r18_digits.py', '../_base_/methods/kdpp.py'
]
model = _base_.pop('kdpp')
# the centroids over 50 batches (the digits set has 100); both losses
# warmed up linearly over the first 100 iterations: from the first
# iteration, with the student's RoI head still random and its learning rate
# warming up, they made one seed of three collapse (mAP 0.0; see
# docs/method_notes.md, "KD++ collapses at seed 1")
custom_hooks = _base_.custom_hooks + [
    dict(hook, num_iters=50) for hook in _base_.pop('kdpp_hooks')
] + [dict(type='mmkd.DistillLossWeightHook', warmup=100)]
