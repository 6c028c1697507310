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
    ``distill.nd``) and the last checkpoint saved, which is untouched. When
    the config itself holds a NaN or infinite number (a loss weight or
    temperature of ``nan``) it names that setting instead of advising a lower
    learning rate.
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
        settings = non_finite_settings(runner.cfg)
        if settings:
            advice = (f'The config sets {", ".join(settings)}: a non-finite '
                      'setting makes the loss non-finite whatever the '
                      'learning rate; set a finite value.')
        else:
            advice = ('Lower the learning rate, clip gradients '
                      '(optim_wrapper.clip_grad=dict(max_norm=...)) or the '
                      'weight of the loss named.')
        raise FloatingPointError(
            f'Iteration {runner.iter + 1}: non-finite loss ({entries}); '
            'training stopped before saving it. The last checkpoint is '
            f'{last or "none yet"}. {advice}')


def non_finite_settings(cfg, keys=('model', 'optim_wrapper')) -> list:
    """``'key=value'`` for every NaN or infinite number under ``keys``.

    Example:
        >>> non_finite_settings(dict(model=dict(losses=dict(ld=dict(
        ...     temperature=float('nan'), loss_weight=1.0)))))
        ['model.losses.ld.temperature=nan']
    """

    def walk(value, key):
        if isinstance(value, float) and not math.isfinite(value):
            yield f'{key}={value}'
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f'{key}.{k}')
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                yield from walk(v, f'{key}.{i}')

    return [s for k in keys for s in walk(cfg.get(k), k)]
