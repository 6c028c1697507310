"""Stop NetAug's width augmentation for the last part of training."""
from typing import Optional

from mmengine.hooks import Hook

from mmkd.models.distillers.single_teacher import bare
from mmkd.registry import HOOKS


@HOOKS.register_module()
class NetAugHook(Hook):
    """Switch :class:`~mmkd.models.NetAug`'s augmented models off from
    iteration (or epoch) ``stop`` on.

    The official NetAug runs stop augmenting widths for the last 75 of 155
    epochs (``stop_aug_w_epoch``), so the base model trains alone at the
    end. The switch depends on the iteration alone, so a resumed run
    follows the same schedule. From the stop on, the augmented model's
    logged values (``aug.decode.loss_ce`` etc.) are dropped from the
    message hub: they no longer change, and the log would otherwise repeat
    their last values as current ones (``aug.loss`` stays, at 0).

    Args:
        stop (int, optional): First iteration (epoch with ``by_epoch``)
            without augmentation. Defaults to None, never.
        by_epoch (bool): Count epochs instead of iterations. Defaults to
            False.

    Example:
        >>> NetAugHook(stop=200).augments(199), NetAugHook(stop=200).augments(
        ...     200)
        (True, False)
    """

    priority = 'NORMAL'

    def __init__(self, stop: Optional[int] = None,
                 by_epoch: bool = False) -> None:
        if stop is not None and (isinstance(stop, bool)
                                 or not isinstance(stop, int) or stop < 0):
            raise ValueError(f'NetAugHook.stop must be an int >= 0 or None, '
                             f'got {stop!r}')
        self.stop, self.by_epoch = stop, by_epoch

    def augments(self, t: int) -> bool:
        """Whether iteration (or epoch) ``t`` trains the augmented models."""
        return self.stop is None or t < self.stop

    def before_train(self, runner) -> None:
        self._netaug(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        augment = self.augments(runner.epoch if self.by_epoch else runner.iter)
        self._netaug(runner).augment = augment
        if not augment:
            scalars = runner.message_hub.log_scalars
            for key in [
                    k for k in scalars
                    if k.startswith('train/aug.') and k != 'train/aug.loss'
            ]:
                del scalars[key]

    @staticmethod
    def _netaug(runner):
        model = bare(runner.model)
        if not hasattr(model, 'aug_model'):
            raise TypeError('NetAugHook needs mmkd.NetAug as the model, got '
                            f'{type(model).__name__}')
        return model
