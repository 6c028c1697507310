# Ablation: every term at 1e-4 of the official factors.
_base_ = ['./segformer_mitb2_to_mitb0_digits_mobilebert_official.py']
model = dict(losses={name: dict(loss_weight=1 / 8 / 10000)
                     for name in _base_.model.losses})
