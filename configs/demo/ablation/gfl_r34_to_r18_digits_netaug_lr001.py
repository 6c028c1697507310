# NetAug on the digits GFL student at half the baseline's learning rate
# (0.01 instead of 0.02). At the start the augmented loss's gradient on the
# shared weights points where the base loss's does (cosine 0.86-0.92 on the
# first batches), so alpha 1 doubles the step on them; the digits students'
# 0.02 is already twice mmdet's linear rule. Here the early step on the
# shared weights is about the baseline's.
# Measured with the official random start of the augmented weights.
_base_ = ['../gfl_r34_to_r18_digits_netaug.py']
model = dict(aug_init='random')
optim_wrapper = dict(optimizer=dict(lr=0.01))
