# Structured KD (pixel-wise, pair-wise, holistic; Liu et al., CVPR 2019):
# DeepLabV3 R101-D8 teacher -> R18-D8 student, Cityscapes 512x1024, 80k iters.
_base_ = ['./_base_/deeplabv3_r101_to_r18.py', './_base_/methods/skd.py']
model = _base_.pop('skd')
# the student's own optimizer, and SGD at 4e-4 for the critic
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
