# Ablation: the PSPNet hint decayed linearly from 1 to 0 over the run.
_base_ = ['../pspnet_r34_to_r18_digits_hint.py']
custom_hooks = _base_.custom_hooks + [
    dict(type='mmkd.DistillLossWeightHook', decay_begin=0, decay_end=400)
]
