# Structured KD's pair-wise term alone (configs/_base_/methods/skd.py) on
# the PSPNet pair: an ablation of pspnet_r34_to_r18_digits_skd.py.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/skd.py'
]
# the pair term of skd.py, without its critic
model = dict(
    type='mmkd.StructuredDistiller',
    losses=dict(pair=_base_.pop('skd').losses.pair))
_base_.pop('skd_critic_optim_wrapper')  # no critic to optimize
