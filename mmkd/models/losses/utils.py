"""Helpers shared by mmkd's losses."""
from typing import Sequence, Tuple, Union

from torch import Tensor

Features = Union[Tensor, Sequence[Tensor]]


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
