# The control for NetAug's learning rate: the digits GFL student alone at
# twice its learning rate (0.04 instead of 0.02), about the step that
# NetAug's aligned augmented gradient (alpha 1) gives the shared weights
# while the augmentation runs.
_base_ = ['../gfl_r18_digits.py']
optim_wrapper = dict(optimizer=dict(lr=0.04))
