# Ablation: the PSPNet hint warmed up linearly from 0 to 1 over the run.
_base_ = ['../pspnet_r34_to_r18_digits_hint.py']
custom_hooks = _base_.custom_hooks + [
    dict(type='mmkd.DistillLossWeightHook', warmup=400)
]
