# NetAug (configs/_base_/netaug.py) on the digits PSPNet student, without a
# teacher. Widened: the ResNet-18-D8 (stem and stages) and the heads'
# inputs; the heads' own widths stay. The bottleneck reads [input, pooled
# maps], a concatenation: NetAug nests the base in it piece by piece. The
# augmentation stops at half the 400 iterations, as the official runs stop
# it for about the last half. The backbone is pretrained, so every wide
# model starts as the base (aug_init='preserve').
_base_ = ['./pspnet_r18_digits.py', '../_base_/netaug.py']
model = dict(
    _base_.pop('netaug'),
    _delete_=True,
    model=_base_.model,
    width_keys=_base_.pop('netaug_width_keys').segmentor,
    aug_init='preserve')
custom_imports = _base_.netaug_runtime.custom_imports
custom_hooks = _base_.pop('netaug_runtime').custom_hooks + [
    dict(type='mmkd.NetAugHook', stop=200)
]
