# Ablation: official factors, every term decayed linearly to 0 over the
# first 200 iterations (transfer first, then the task).
_base_ = ['./segformer_mitb2_to_mitb0_digits_mobilebert_official.py']
custom_hooks = _base_.custom_hooks + [
    dict(type='mmkd.DistillLossWeightHook', decay_begin=0, decay_end=200)
]
