# Structured KD (pixel-wise, pair-wise, holistic; Liu et al., CVPR 2019):
# DeepLabV3 R101-D8 teacher -> R18-D8 student, Cityscapes 512x1024, 80k iters.
_base_ = ['./_base_/deeplabv3_r101_to_r18.py', './_base_/methods/skd.py']
model = dict(
    _delete_=True,
    type='mmkd.StructuredDistiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    losses={{_base_.skd.losses}},
    critic={{_base_.skd.critic}},
    critic_steps={{_base_.skd.critic_steps}},
    gp_weight={{_base_.skd.gp_weight}},
    critic_loss_weight={{_base_.skd.critic_loss_weight}})
# the student's own optimizer, and SGD at 4e-4 for the critic
optim_wrapper = dict(
    _delete_=True,
    constructor='mmkd.DistillerOptimWrapperConstructor',
    student={{_base_.optim_wrapper}},
    critic={{_base_.skd.critic_optim_wrapper}})
# the student keeps its schedule; the critic's lr decays to 0 over the run
param_scheduler = dict(
    _delete_=True,
    student={{_base_.param_scheduler}},
    critic=[
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0,
             end={{_base_.train_cfg.max_iters}}, by_epoch=False)
    ])
