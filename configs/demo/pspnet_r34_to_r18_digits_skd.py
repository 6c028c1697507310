# Structured KD (configs/_base_/methods/skd.py) on the PSPNet pair.
_base_ = [
    './_base_/pspnet_r34_to_r18_digits.py', '../_base_/methods/skd.py'
]
model = _base_.pop('skd')
optim_wrapper = dict(
    _delete_=True,
    constructor='mmkd.DistillerOptimWrapperConstructor',
    student=_base_.optim_wrapper,
    critic=_base_.pop('skd_critic_optim_wrapper'))
# the student keeps its schedule; the critic's lr decays to 0 over the run
param_scheduler = dict(
    _delete_=True,
    student=_base_.param_scheduler,
    critic=[
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0,
             end=_base_.train_cfg.max_iters, by_epoch=False)
    ])
