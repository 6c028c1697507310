# Ablation: the feature-map terms at 0.001 of the official factors, the
# attention terms as official.
_base_ = ['./segformer_mitb2_to_mitb0_digits_mobilebert_official.py']
model = dict(losses={name: dict(loss_weight=1 / 8 / 1000)
                     for name in _base_.model.losses
                     if name.startswith('fmt')})
