# NetAug on the digits GFL student with the official initialisation of the
# augmented weights (aug_init='random'): each wide model starts as the
# pretrained base plus random added channels that feed the base's. The
# digits configs start every wide model as the base instead ('preserve').
_base_ = ['../gfl_r34_to_r18_digits_netaug.py']
model = dict(aug_init='random')
