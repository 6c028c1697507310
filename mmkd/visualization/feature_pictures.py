"""Pictures of tapped teacher and student features, and of their norms.

The norm panel shows the observation behind ND (`Improving Knowledge
Distillation via Regularizing Feature Norm and Direction
<https://arxiv.org/abs/2305.17007>`_, Wang et al., 2023): larger models have
larger feature norms.
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from mmkd.models.distillers.taps import levels_of

#: Panel order and labels of :func:`draw_feature_pictures`.
COLUMNS = (('teacher', 'teacher'), ('student', 'student'), ('adapted',
                                                            'adapted student'))


def channel_norms(feature: Tensor) -> Tensor:
    """The L2 norm over channels at each location.

    Args:
        feature (Tensor): ``(N, C, H, W)`` maps, or ``(N, C)`` vectors.

    Returns:
        Tensor: ``(N, H, W)`` (or ``(N, )``) norms, in float32.

    Example:
        >>> import torch
        >>> channel_norms(torch.tensor([[[[3.]], [[4.]]]])).tolist()
        [[[5.0]]]
    """
    return feature.detach().float().norm(dim=1)


def norm_statistics(levels: Sequence[Tensor]) -> Dict[str, float]:
    """Mean, standard deviation and maximum of the per-location norms.

    Every location of every level counts once (FPN levels with more
    locations weigh more).

    Args:
        levels (Sequence[Tensor]): Feature levels, see
            :func:`channel_norms`.

    Returns:
        dict: ``mean``, ``std`` (population) and ``max`` norms, and
        ``count``, the number of locations.

    Example:
        >>> import torch
        >>> norm_statistics([torch.tensor([[[[3., 0.]], [[4., 1.]]]])])
        {'mean': 3.0, 'std': 2.0, 'max': 5.0, 'count': 2}
    """
    norms = torch.cat([channel_norms(f).flatten() for f in levels])
    return dict(
        mean=norms.mean().item(),
        std=norms.std(unbiased=False).item(),
        max=norms.max().item(),
        count=norms.numel())


def default_loss(distiller: nn.Module) -> str:
    """The first loss whose student and teacher are module taps.

    Args:
        distiller (nn.Module): A :class:`SingleTeacherDistiller`.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> default_loss(NS(pairings={'roi': None}, loss_specs=dict(
        ...     kd=NS(student='roi.cls', teacher='roi.cls'),
        ...     hint=NS(student='neck', teacher='neck'))))
        'hint'
    """
    for name, spec in distiller.loss_specs.items():
        if _taps_modules(distiller, spec):
            return name
    raise ValueError(
        'no loss of model.losses taps modules of both models (all of '
        f'{sorted(distiller.loss_specs)} read pairing records); feature '
        "pictures need a loss such as dict(student='neck', teacher='neck')")


def _taps_modules(distiller: nn.Module, spec) -> bool:
    return all(
        tap.split('.')[0] not in distiller.pairings
        for tap in (spec.student, spec.teacher))


@torch.no_grad()
def record_features(distiller: nn.Module,
                    inputs: Tensor,
                    data_samples: Optional[list] = None,
                    loss: Optional[str] = None) -> Dict[str, List[Tensor]]:
    """The teacher's, student's and adapted student's levels of one loss.

    Both models run ``_forward`` in eval mode under ``torch.no_grad()``; the
    teacher stops as soon as its taps are recorded.

    Args:
        distiller (nn.Module): A :class:`SingleTeacherDistiller`.
        inputs (Tensor): A preprocessed batch, as the student takes it.
        data_samples (list, optional): The batch's data samples. Defaults to
            None.
        loss (str, optional): A name in ``model.losses``; None takes
            :func:`default_loss`. Defaults to None.

    Returns:
        dict: ``teacher``, ``student`` and, when the loss has an adapter,
        ``adapted``: lists of tensor levels.

    Example:
        >>> import torch
        >>> from mmkd.models import SingleTeacherDistiller
        >>> student = dict(type='mmseg.EncoderDecoder',
        ...     backbone=dict(type='mmseg.MobileNetV2', widen_factor=0.25,
        ...                   out_indices=(4, 6)),
        ...     decode_head=dict(type='mmseg.FCNHead', in_channels=80,
        ...                      channels=8, num_classes=3, num_convs=1,
        ...                      concat_input=False))
        >>> distiller = SingleTeacherDistiller(
        ...     student=student,
        ...     teacher=dict(config=dict(student, decode_head=dict(
        ...         student['decode_head'], channels=16)), checkpoint=None),
        ...     losses=dict(hint=dict(type='FeatureHintLoss',
        ...         student='decode_head.convs', teacher='decode_head.convs')))
        >>> feats = record_features(distiller, torch.rand(1, 3, 64, 64))
        >>> {k: tuple(v[0].shape[1:]) for k, v in feats.items()}
        {'teacher': (16, 2, 2), 'student': (8, 2, 2), 'adapted': (16, 2, 2)}
    """
    loss = default_loss(distiller) if loss is None else loss
    if loss not in distiller.loss_specs:
        raise KeyError(f'loss {loss!r} is not in model.losses; valid: '
                       f'{sorted(distiller.loss_specs)}')
    spec = distiller.loss_specs[loss]
    if not _taps_modules(distiller, spec):
        raise ValueError(f'loss {loss!r} reads pairing records, not module '
                         'taps; pick a loss that taps modules')
    distiller.eval()
    distiller.teacher.eval()
    records_t = distiller._teacher_records(inputs, data_samples)
    with distiller.student_taps.recording():
        distiller.student._forward(inputs, data_samples)
        records_s = distiller.student_taps.collect()
    feats = dict(
        teacher=levels_of(records_t[spec.teacher]),
        student=levels_of(records_s[spec.student]))
    if loss in distiller.adapters:
        feats['adapted'] = distiller.adapters[loss](feats['student'])
    return feats


def _heat_map(fig, ax, feature: Tensor, label: str) -> None:
    if feature.dim() == 4:
        image = channel_norms(feature[:1])[0].numpy()
    else:  # (N, D) vectors: one row of norms
        image = channel_norms(feature)[None].numpy()
    shown = ax.imshow(image, cmap='viridis')
    fig.colorbar(shown, ax=ax, shrink=0.9)
    ax.set_title(f'{label} {tuple(feature.shape[1:])}', fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_feature_pictures(features: Dict[str, Sequence[Tensor]],
                          out: str,
                          title: str = '',
                          bins: int = 50) -> str:
    """Write one PNG: per-level norm maps and the distribution of norms.

    A row per level shows, for the teacher, the student and (when present)
    the adapted student, the L2 norm over channels at each location of the
    first image, each with its own colour scale. The last panel overlays
    histograms (as densities) of the per-location norms of all levels, with
    the mean norms in the legend.

    Args:
        features (dict): ``teacher``, ``student`` and optionally ``adapted``
            lists of levels with as many levels, as
            :func:`record_features` returns.
        out (str): Path of the PNG to write.
        title (str): The figure's title. Defaults to ''.
        bins (int): Histogram bins. Defaults to 50.

    Returns:
        str: ``out``.

    Example:
        >>> import os.path as osp, tempfile, torch
        >>> feats = dict(teacher=[torch.rand(1, 4, 6, 6)],
        ...              student=[torch.rand(1, 2, 6, 6)])
        >>> out = osp.join(tempfile.mkdtemp(), 'features.png')
        >>> draw_feature_pictures(feats, out, 'hint') == out
        True
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend
    columns = [(key, label) for key, label in COLUMNS if key in features]
    counts = {key: len(features[key]) for key, _ in columns}
    num_levels = counts['teacher']
    if set(counts.values()) != {num_levels}:
        raise ValueError(f'the sides need as many levels, got {counts}')
    fig = Figure(
        figsize=(3.4 * len(columns), 3 * (num_levels + 1)),
        layout='constrained')
    grid = fig.add_gridspec(num_levels + 1, len(columns))
    for level in range(num_levels):
        for col, (key, label) in enumerate(columns):
            _heat_map(fig, fig.add_subplot(grid[level, col]),
                      features[key][level], f'{label}, level {level}')
    ax = fig.add_subplot(grid[-1, :])
    for key, label in columns:
        norms = torch.cat([channel_norms(f).flatten() for f in features[key]])
        mean = norm_statistics(features[key])['mean']
        ax.hist(
            norms.numpy(),
            bins=bins,
            density=True,
            histtype='step',
            label=f'{label} (mean {mean:.3g})')
    ax.set_xlabel('feature L2 norm per location')
    ax.set_ylabel('density')
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(out, dpi=80)
    return out
