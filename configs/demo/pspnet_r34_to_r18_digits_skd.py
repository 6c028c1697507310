# Structured KD (configs/_base_/methods/skd.py) on the PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/skd.py'
]
model = dict(
    _delete_=True,
    type='mmkd.StructuredDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.skd.losses}},
    critic={{_base_.skd.critic}},
    critic_steps={{_base_.skd.critic_steps}},
    gp_weight={{_base_.skd.gp_weight}})
optim_wrapper = dict(
    _delete_=True,
    constructor='mmkd.DistillerOptimWrapperConstructor',
    student={{_base_.optim_wrapper}},
    critic={{_base_.skd.critic_optim_wrapper}})
