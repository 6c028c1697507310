# Structured KD's holistic (adversarial) term alone, with its critic: an
# ablation of pspnet_r34_to_r18_digits_skd.py.
_base_ = './pspnet_r34_to_r18_digits_skd.py'
model = dict(
    losses=dict(_delete_=True, holistic=_base_.model.losses.holistic))
