# NetAug on the digits GFL student with the augmented loss at half weight
# (alpha 0.5 instead of the official 1): does alpha 1's doubled gradient on
# the shared weights early in a 400-iteration run cost the baseline's mAP?
_base_ = ['../gfl_r34_to_r18_digits_netaug.py']
# Measured with the official random start of the augmented weights.
model = dict(alpha=0.5, aug_init='random')
