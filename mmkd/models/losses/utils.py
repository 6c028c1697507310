"""What every mmkd loss shares: levels, the teacher's side, empty inputs,
temperatures and mmdet's reduction."""
import math
from typing import Optional, Sequence, Tuple, Union

from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

Features = Union[Tensor, Sequence[Tensor]]
REDUCTIONS = ('none', 'mean', 'sum')


def as_levels(feat_s: Features,
              feat_t: Features) -> Tuple[Sequence[Tensor], Sequence[Tensor]]:
    """Pair student and teacher inputs level by level.

    A single tensor is one level; a tuple or list (an FPN's outputs) is one
    level per item. The two sides must have the same number of levels.
    """
    levels_s = [feat_s] if isinstance(feat_s, Tensor) else list(feat_s)
    levels_t = [feat_t] if isinstance(feat_t, Tensor) else list(feat_t)
    if len(levels_s) != len(levels_t):
        raise ValueError(
            f'student gives {len(levels_s)} feature levels but the teacher '
            f'gives {len(levels_t)}: tap outputs with the same number of '
            'levels (e.g. both necks, or both the same backbone stage)')
    return levels_s, levels_t


def check_temperature(value, name: str = 'temperature') -> float:
    """``value`` if it is a finite number > 0, else a ValueError naming it.

    Example:
        >>> check_temperature(2)
        2
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value < math.inf:
        raise ValueError(
            f'{name} must be a finite number > 0, got {name}={value!r}')
    return value


def check_reduction(reduction: str, name: str = 'reduction',
                    valid: Sequence[str] = REDUCTIONS) -> str:
    """``reduction`` if it is one of ``valid``, else a ValueError."""
    if reduction not in valid:
        raise ValueError(f'{name} must be one of {tuple(valid)}, got '
                         f'{name}={reduction!r}')
    return reduction


class DistillLoss(nn.Module):
    """Base of mmkd's distillation losses, in mmdet's loss convention.

    A subclass computes one level's element-wise (or per-sample) loss in
    :meth:`elementwise`; this class does the rest, once for every loss:

    - one tensor or a sequence of levels (an FPN's outputs) on each side,
      the levels' losses summed;
    - the teacher's side detached and cast to the student's dtype;
    - empty inputs give a zero that keeps the graph (DDP finds every
      gradient);
    - mmdet's ``weight``, ``avg_factor`` and ``reduction_override``,
      reduced with mmdet's ``weight_reduce_loss``, times ``loss_weight``.

    A loss whose :meth:`elementwise` gives one number per level (a relation
    over the whole batch, as DIST's, or a sum over the map, as FGD's) sets
    :attr:`per_map`; ``weight`` and ``avg_factor`` are then refused.

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> class L1(DistillLoss):
        ...     def elementwise(self, pred_s, pred_t):
        ...         return (pred_s - pred_t).abs()
        >>> s, t = torch.zeros(2, 3), torch.ones(2, 3)
        >>> float(L1(loss_weight=2.)(s, t)), float(L1()(s, t, avg_factor=2))
        (2.0, 3.0)
        >>> float(L1()(s[:0], t[:0]))
        0.0
    """

    #: one number per level: ``weight`` and ``avg_factor`` do not apply
    per_map = False

    def __init__(self, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def elementwise(self, pred_s: Tensor, pred_t: Tensor,
                    **kwargs) -> Tensor:
        """One level's unreduced loss; ``pred_t`` is already detached."""
        raise NotImplementedError

    def forward(self,
                pred_s: Features,
                pred_t: Features,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """The weighted, reduced loss over one tensor or a sequence of
        levels; further keyword arguments go to :meth:`elementwise`."""
        if self.per_map and (weight is not None or avg_factor is not None):
            raise ValueError(
                f'{type(self).__name__} gives one number per level: weight '
                'and avg_factor do not apply, got '
                f'weight={None if weight is None else tuple(weight.shape)}, '
                f'avg_factor={avg_factor!r}')
        reduction = self.reduction
        if reduction_override is not None:
            reduction = check_reduction(reduction_override,
                                        'reduction_override')
        levels_s, levels_t = as_levels(pred_s, pred_t)
        if not levels_s:
            raise ValueError(f'{type(self).__name__} got an empty sequence '
                             'of levels')
        total = None
        for s, t in zip(levels_s, levels_t):
            loss = self.elementwise(s, t.detach().to(s.dtype), **kwargs)
            if loss.numel() == 0 and reduction != 'none':
                continue
            if weight is not None:
                weight = weight.detach().to(loss.dtype)
            loss = weight_reduce_loss(loss, weight, reduction, avg_factor)
            total = loss if total is None else total + loss
        if total is None:  # every level empty
            return levels_s[0].sum() * 0.
        return self.loss_weight * total


class TeacherWidth:
    """Mixin of a loss with layers of its own at the teacher's width (MGD's
    generator, FGD's GcBlocks).

    The distiller calls :meth:`set_channels` with the teacher map's channels
    at build time when the config gives none, or checks a given width
    against them (:attr:`expected_channels`). Subclasses build their layers
    in :meth:`build_layers` and call :meth:`check_maps` on the two maps.
    """

    #: the smallest width the layers can take
    min_channels = 1

    @property
    def expected_channels(self) -> Optional[int]:
        """The teacher channels the layers were built for (None until
        known)."""
        return getattr(self, 'channels', None)

    def set_channels(self, channels: int) -> None:
        """Build the layers for teacher maps of ``channels``."""
        if isinstance(channels, bool) or not isinstance(channels, int) \
                or channels < self.min_channels:
            raise ValueError(
                'channels must be the teacher map\'s channel count (an int '
                f'>= {self.min_channels}), got channels={channels!r}')
        self.channels = channels
        self.build_layers(channels)

    def build_layers(self, channels: int) -> None:
        """Create the loss's own layers at ``channels``."""
        raise NotImplementedError

    def check_maps(self, feat_s: Tensor, feat_t: Tensor) -> None:
        """A ValueError unless both maps are (N, C, H, W) of one shape and
        the layers exist and fit the teacher's width."""
        name = type(self).__name__
        if feat_s.dim() != 4 or feat_s.shape != feat_t.shape:
            raise ValueError(
                f'{name} expects (adapted) student and teacher maps of one '
                f'shape (N, C, H, W), got {tuple(feat_s.shape)} and '
                f'{tuple(feat_t.shape)}')
        if self.expected_channels is None:
            raise ValueError(
                f'{name} has no layers yet: give channels=... or use it in a '
                'distiller, which sets the teacher\'s channels')
        if feat_t.shape[1] != self.expected_channels:
            raise ValueError(
                f'{name} was built with channels={self.expected_channels}, '
                f'but the teacher map has {feat_t.shape[1]} channels: set '
                f'channels={feat_t.shape[1]} in the loss entry')
