# Ablation: attention transfer alone, at its official factor.
_base_ = ['./segformer_mitb2_to_mitb0_digits_mobilebert_official.py']
model = dict(losses={name: dict(loss_weight=0.0)
                     for name in _base_.model.losses
                     if name.startswith('fmt')})
