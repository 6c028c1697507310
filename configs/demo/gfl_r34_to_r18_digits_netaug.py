# NetAug (configs/_base_/netaug.py) on the digits GFL student,
# without a teacher. Widened: the ResNet-18 (16 -> 29 and 42 channels at
# the stem) and the FPN's inputs; the FPN's outputs and the head keep their
# widths. The augmentation stops at half the 400 iterations, as the
# official runs stop it for about the last half. The backbone is
# pretrained, so every wide model starts as the base (aug_init='preserve';
# the official random start measured worse: ablation/..._netaug_random.py).
_base_ = ['./gfl_r18_digits.py', '../_base_/netaug.py']
model = dict(
    _base_.pop('netaug'),
    _delete_=True,
    model=_base_.model,
    width_keys=_base_.pop('netaug_width_keys').detector,
    aug_init='preserve')
custom_imports = _base_.netaug_runtime.custom_imports
custom_hooks = _base_.pop('netaug_runtime').custom_hooks + [
    dict(type='mmkd.NetAugHook', stop=200)
]
