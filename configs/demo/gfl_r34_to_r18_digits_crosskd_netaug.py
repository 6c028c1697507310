# CrossKD (the GFL pair's best method) and NetAug together: the student is
# NetAug's base model, L = L_task + L_CrossKD + L_aug. Widths, stop and
# aug_init as in gfl_r34_to_r18_digits_netaug.py.
_base_ = [
    './gfl_r34_to_r18_digits_crosskd.py', '../_base_/netaug.py'
]
_base_.pop('netaug_runtime')
model = dict(
    _base_.pop('netaug'),
    _delete_=True,
    model=_base_.model,
    width_keys=_base_.pop('netaug_width_keys').detector,
    aug_init='preserve')
custom_hooks = _base_.custom_hooks + [dict(type='mmkd.NetAugHook', stop=200)]
