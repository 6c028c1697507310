# NetAug (configs/_base_/netaug.py) on a tiny DeepLabV3: ResNet-18-D8 (V1c) at
# half width (32 channels at the stem; mmseg's R18 pretrained weights are
# full width, so from scratch), Cityscapes 512x1024, mmseg's 80k schedule.
# Widened 1.8x and 2.6x: the backbone and the heads' inputs (ASPP
# concatenates only its own, unwidened branches). The augmentation stops
# at 40k, as the official runs stop it for about the last half.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/netaug.py'
]
_base_.model.pretrained = None
_base_.model.backbone.update(base_channels=32, stem_channels=32)
_base_.model.decode_head.in_channels = 256
_base_.model.auxiliary_head.in_channels = 128
model = dict(
    _base_.pop('netaug'),
    _delete_=True,
    model=_base_.model,
    width_keys=_base_.pop('netaug_width_keys').segmentor)
custom_imports = _base_.netaug_runtime.custom_imports
custom_hooks = _base_.pop('netaug_runtime').custom_hooks + [
    dict(type='mmkd.NetAugHook', stop=40000)
]
