"""Stop training at the first non-finite loss, naming it."""
import math

from mmengine.hooks import Hook

from mmkd.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` as soon as a logged loss is NaN or inf.

    mmengine keeps training through a NaN loss, and every later checkpoint is
    then worthless. This hook reads the step's logged values (already on the
    host: mmengine's ``RuntimeInfoHook`` has read them, so the check costs no
    device sync) and stops the run, naming each non-finite entry (e.g.
    ``distill.nd``) and the last checkpoint saved, which is untouched.
    ``tools/train.py`` adds it to every run that does not list it.

    Example:
        >>> FiniteLossHook().priority
        'NORMAL'
    """

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        values = {
            key: float(value.detach()) if hasattr(value, 'detach') else
            float(value)
            for key, value in (outputs or {}).items()
        }
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        last = runner.message_hub.get_info('last_ckpt')
        entries = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise FloatingPointError(
            f'Iteration {runner.iter + 1}: non-finite loss ({entries}); '
            'training stopped before saving it. The last checkpoint is '
            f'{last or "none yet"}. Lower the learning rate, clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=...)) or the weight of '
            'the loss named.')
