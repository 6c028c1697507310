# NetAug on the digits PSPNet with the official initialisation of the
# augmented weights (aug_init='random'): every wide model starts as the
# pretrained base plus noise. The ablation of the recipe's 'preserve'.
_base_ = ['../pspnet_r34_to_r18_digits_netaug.py']
model = dict(aug_init='random')
