# The control for NetAug's learning rate on the digits PSPNet: the student
# alone at twice its learning rate (0.04 instead of 0.02), about the step
# that NetAug's aligned augmented gradient (alpha 1, 'preserve': each wide
# model starts as the base) gives the shared weights while it runs.
_base_ = ['../pspnet_r18_digits.py']
optim_wrapper = dict(optimizer=dict(lr=0.04))
