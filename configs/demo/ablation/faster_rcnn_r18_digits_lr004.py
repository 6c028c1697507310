# The learning-rate control for the digits Faster R-CNN student: the student
# alone at twice its learning rate (0.04 instead of 0.02), as the GFL and
# PSPNet controls. Unlike theirs, this one is not safe: seed 1 diverges
# (docs/benchmark.md, learning-rate control).
_base_ = ['../faster_rcnn_r18_digits.py']
optim_wrapper = dict(optimizer=dict(lr=0.04))
