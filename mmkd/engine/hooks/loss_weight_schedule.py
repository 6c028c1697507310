"""A schedule for the weights of distillation losses."""
from typing import Optional, Sequence

from mmengine.hooks import Hook

from mmkd.models.distillers.single_teacher import distiller_of
from mmkd.registry import HOOKS


@HOOKS.register_module()
class DistillLossWeightHook(Hook):
    """Warm up, decay or stop distillation losses over training.

    Before every training iteration the factor below multiplies each chosen
    ``distill.<name>`` loss (on top of its ``loss_weight``), with ``t`` the
    current iteration (or epoch, with ``by_epoch=True``), 0-based:

    - ``t < warmup``: linear from ``warmup_ratio`` to 1;
    - ``decay_begin <= t < decay_end``: linear from 1 to ``end_factor``,
      then ``end_factor``;
    - ``t >= stop``: 0, and the teacher no longer runs once every loss is 0.

    The factor depends on ``t`` alone, so a resumed run follows the same
    schedule. Iteration schedules (mmseg's) and epoch schedules both work.

    Args:
        losses (Sequence[str], optional): Names of the losses to schedule
            (keys of ``model.losses``). Defaults to None, all of them.
        by_epoch (bool): Count epochs instead of iterations. Defaults to
            False.
        warmup (int): Length of the linear warm-up. Defaults to 0.
        warmup_ratio (float): Factor at ``t = 0``. Defaults to 0.0.
        decay_begin (int, optional): Start of the linear decay. Defaults to
            None, no decay.
        decay_end (int, optional): End of the decay; needed with
            ``decay_begin``. Defaults to None.
        end_factor (float): Factor after the decay. Defaults to 0.0.
        stop (int, optional): From this ``t`` on the losses are off.
            Defaults to None, never.

    Example:
        >>> hook = DistillLossWeightHook(warmup=4, stop=10)
        >>> [hook.factor(t) for t in (0, 2, 4, 9, 10)]
        [0.0, 0.5, 1.0, 1.0, 0.0]
    """

    priority = 'NORMAL'

    def __init__(self,
                 losses: Optional[Sequence[str]] = None,
                 by_epoch: bool = False,
                 warmup: int = 0,
                 warmup_ratio: float = 0.0,
                 decay_begin: Optional[int] = None,
                 decay_end: Optional[int] = None,
                 end_factor: float = 0.0,
                 stop: Optional[int] = None) -> None:
        if (decay_begin is None) != (decay_end is None) or (
                decay_begin is not None and decay_end <= decay_begin):
            raise ValueError(
                f'DistillLossWeightHook: decay_begin={decay_begin} and '
                f'decay_end={decay_end} must both be set, with decay_end > '
                'decay_begin, or both be None')
        if warmup < 0 or not 0 <= warmup_ratio <= 1:
            raise ValueError(
                f'DistillLossWeightHook: warmup={warmup} must be >= 0 and '
                f'warmup_ratio={warmup_ratio} in [0, 1]')
        self.losses = None if losses is None else list(losses)
        self.by_epoch = by_epoch
        self.warmup, self.warmup_ratio = warmup, warmup_ratio
        self.decay_begin, self.decay_end = decay_begin, decay_end
        self.end_factor, self.stop = end_factor, stop

    def factor(self, t: int) -> float:
        """The multiplier at iteration (or epoch) ``t``."""
        if self.stop is not None and t >= self.stop:
            return 0.0
        if t < self.warmup:
            return self.warmup_ratio + (1 -
                                        self.warmup_ratio) * t / self.warmup
        if self.decay_begin is not None and t >= self.decay_begin:
            progress = min(1.0, (t - self.decay_begin) /
                           (self.decay_end - self.decay_begin))
            return 1.0 + (self.end_factor - 1.0) * progress
        return 1.0

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        unknown = set(self.losses or ()) - set(model.loss_multipliers)
        if unknown:
            raise KeyError(
                f'DistillLossWeightHook.losses: {sorted(unknown)} are not in '
                'model.losses; valid names are '
                f'{sorted(model.loss_multipliers)}')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        model = self._distiller(runner)
        factor = self.factor(runner.epoch if self.by_epoch else runner.iter)
        for name in self.losses or model.loss_multipliers:
            model.loss_multipliers[name] = factor

    @staticmethod
    def _distiller(runner):
        model = distiller_of(runner.model)
        if not hasattr(model, 'loss_multipliers'):
            raise TypeError('DistillLossWeightHook needs an mmkd distiller as '
                            f'model, got {type(model).__name__}')
        return model
