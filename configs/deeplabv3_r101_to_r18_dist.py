# DIST on the logits (see _base_/methods/dist.py): DeepLabV3 R101-D8 teacher
# -> R18-D8 student, Cityscapes 512x1024, 80k iters. The DIST paper reports
# 74.21 -> 77.10 mIoU for this pair (its own training code and schedule).
_base_ = ['./_base_/deeplabv3_r101_to_r18.py', './_base_/methods/dist.py']
model = _base_.pop('dist')
