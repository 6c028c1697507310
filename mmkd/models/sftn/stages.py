"""The blocks SFTN splits backbones into: the stages of a ResNet-style
backbone (``res_layers``), as mmseg's and mmdet's ResNets have."""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmkd.utils import rng_kept
from ..distillers.taps import TapRecorder


def backbone_stages(model: nn.Module, key: str) -> List[str]:
    """The dotted names of a model's backbone stages, in order.

    Example:
        >>> from mmseg.models import ResNet
        >>> backbone_stages(nn.ModuleDict(dict(backbone=ResNet(18))), 'm')
        ['backbone.layer1', 'backbone.layer2', 'backbone.layer3', \
'backbone.layer4']
    """
    backbone = getattr(model, 'backbone', None)
    names = getattr(backbone, 'res_layers', None)
    if not names:
        raise NotImplementedError(
            f'{key}: SFTN splits a backbone into its stages, read off a '
            '`res_layers` list as ResNet, ResNetV1c and ResNeXt have; '
            f'{type(backbone).__name__} has none')
    return [f'backbone.{name}' for name in names]


def stage_shapes(model: nn.Module, names: Sequence[str], size: int,
                 key: str) -> List[torch.Size]:
    """The output shape of each named stage on one random ``size`` x
    ``size`` image through the backbone, in eval mode and without moving
    the training's random generators."""
    taps = TapRecorder(model, names, key)
    was_training = model.training
    model.eval()
    try:
        with rng_kept(), torch.no_grad(), taps.recording():
            model.backbone(torch.rand(1, 3, size, size))
            records = taps.collect()
    finally:
        taps.remove()
        model.train(was_training)
    return [records[name].shape for name in names]


def check_branch_points(value: Optional[Sequence[int]],
                        num_stages: int) -> Tuple[int, ...]:
    """The teacher stages after which branches start, sorted: every stage
    boundary when ``value`` is None.

    Example:
        >>> check_branch_points(None, 4)
        (1, 2, 3)
        >>> check_branch_points([3, 1], 4)
        (1, 3)
    """
    every = tuple(range(1, num_stages))
    if value is None:
        return every
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p < num_stages
        for p in value) and len(set(value)) == len(value)
    if not ok:
        raise ValueError(
            f'model.branch_points={value!r}: give the teacher stages after '
            'which a student branch starts, distinct integers from 1 to '
            f'{num_stages - 1} (the teacher has {num_stages} stages; a branch '
            f'needs at least one student stage after it), e.g. {every}')
    return tuple(sorted(value))


def check_stage_sizes(point: int, shape_t: torch.Size, shape_s: torch.Size,
                      probe_size: int) -> None:
    """Fail unless the teacher's and the student's maps after stage
    ``point`` have one size, so the student's next stage runs at its own
    resolution on the teacher's features."""
    if shape_t[2:] != shape_s[2:]:
        raise ValueError(
            f'model.branch_points: after stage {point} the teacher gives '
            f'{tuple(shape_t[2:])} maps and the student {tuple(shape_s[2:])} '
            f'on a {probe_size}x{probe_size} image, so the student\'s stage '
            f'{point + 1} would run at another resolution than its own; give '
            "the student the teacher's strides and dilations, or leave out "
            f'branch point {point}')
