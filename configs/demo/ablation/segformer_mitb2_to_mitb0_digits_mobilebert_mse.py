# Ablation: official factors, the feature-map terms as the paper's Eq. 1
# (normalised MSE alone, no mean and variance terms).
_base_ = ['./segformer_mitb2_to_mitb0_digits_mobilebert_official.py']
model = dict(losses={name: dict(mean_weight=0.0, var_weight=0.0)
                     for name in _base_.model.losses
                     if name.startswith('fmt')})
