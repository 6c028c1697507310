# NetAug (configs/_base_/netaug.py) on a tiny GFL: ResNet-18 at half width
# (32 channels at the stem; torchvision's R18 weights are full width, so
# from scratch), COCO, 1x. Widened 1.8x and 2.6x: the backbone and the
# FPN's inputs; the FPN's outputs and the head keep their widths. The
# augmentation stops at epoch 6 of 12, as the official runs stop it for
# about the last half.
_base_ = ['./_base_/gfl_r18_fpn_1x_coco.py', './_base_/netaug.py']
_base_.model.backbone.update(
    base_channels=32, init_cfg=None, frozen_stages=-1, norm_eval=False)
_base_.model.neck.in_channels = [32, 64, 128, 256]
model = dict(
    _base_.pop('netaug'),
    _delete_=True,
    model=_base_.model,
    width_keys=_base_.pop('netaug_width_keys').detector)
custom_imports = _base_.netaug_runtime.custom_imports
custom_hooks = _base_.pop('netaug_runtime').custom_hooks + [
    dict(type='mmkd.NetAugHook', stop=6, by_epoch=True)
]
