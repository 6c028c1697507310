"""Wider copies of a model config, for NetAug's augmented models."""
import copy
import math
from typing import Any, List, Sequence, Tuple

from mmengine.config import ConfigDict


def make_divisible(value: float, divisor: int) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never below
    90 % of it (MobileNet's rounding; NetAug's official code rounds its
    augmented widths with ``divisor=1``).

    Example:
        >>> make_divisible(16 * 1.5, 8), make_divisible(20, 8)
        (24, 24)
        >>> make_divisible(10, 8)  # 8 < 0.9 * 10
        16
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_widths(width_keys: Sequence[str], width_mults: Sequence[float],
                 divisor: int) -> tuple:
    """``(keys, mults)`` after checking them, or a ValueError naming the
    config key."""
    if isinstance(width_keys, str) or not width_keys or not all(
            isinstance(k, str) and k for k in width_keys):
        raise ValueError(
            'model.width_keys must be a non-empty list of dotted keys of the '
            "model config (e.g. ['backbone.base_channels', "
            f"'decode_head.in_channels']), got {width_keys!r}")
    numbers = isinstance(width_mults, (list, tuple)) and all(
        isinstance(m, (int, float)) and not isinstance(m, bool)
        for m in width_mults)
    if not numbers or not width_mults or not all(
            1 < m < math.inf for m in width_mults):
        raise ValueError(
            'model.width_mults must be a non-empty list of width multipliers '
            f'> 1 (the augmented widths), got {width_mults!r}')
    if isinstance(divisor, bool) or not isinstance(divisor,
                                                   int) or divisor < 1:
        raise ValueError(f'model.divisor must be an int >= 1, got '
                         f'{divisor!r}')
    return list(width_keys), sorted({float(m) for m in width_mults})


def _parent(cfg: dict, key: str):
    node = cfg
    parts = key.split('.')
    for i, part in enumerate(parts[:-1]):
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise KeyError(
                f"model.width_keys: {key!r}: the model config has no dict at "
                f"{'.'.join(parts[:i + 1])!r}")
    if parts[-1] not in node:
        raise KeyError(f'model.width_keys: {key!r}: the model config has no '
                       f'such key; its siblings are {sorted(node)}')
    return node, parts[-1]


def _values(value: Any, key: str) -> List[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise TypeError(f'model.width_keys: {key!r} is {value!r}; a width key '
                    'must hold a channel count (int) or a list of them')


def widened(cfg: dict, keys: Sequence[str], mult: float,
            divisor: int = 1) -> Tuple[ConfigDict, float]:
    """``cfg`` with every channel count under ``keys`` scaled, and without
    pretrained weights (a wider model cannot load the base's checkpoint).

    The first key's first count is scaled by ``mult`` and rounded by
    :func:`make_divisible`; every count is then scaled by the same exact
    factor (``rounded / first``), so widths that one derives from another
    (a ResNet's stages from ``base_channels``, a head's ``in_channels``)
    stay consistent. A count that the exact factor does not map to an
    integer is a ValueError naming its key.

    Returns:
        tuple: The wide config and the exact factor.

    Example:
        >>> cfg = dict(backbone=dict(base_channels=16,
        ...            init_cfg=dict(type='Pretrained', checkpoint='r18.pth')),
        ...            neck=dict(in_channels=[16, 32, 64, 128]))
        >>> wide, factor = widened(cfg, ['backbone.base_channels',
        ...                        'neck.in_channels'], 1.8)
        >>> wide.backbone.base_channels, wide.neck.in_channels, factor
        (29, [29, 58, 116, 232], 1.8125)
        >>> wide.backbone.init_cfg is None
        True
    """
    cfg = ConfigDict(copy.deepcopy(cfg))
    factor = None
    for key in keys:
        parent, leaf = _parent(cfg, key)
        values = _values(parent[leaf], key)
        if factor is None:
            factor = make_divisible(values[0] * mult, divisor) / values[0]
        scaled = [v * factor for v in values]
        if any(abs(s - round(s)) > 1e-6 for s in scaled):
            raise ValueError(
                f'model.width_keys: {key!r}={parent[leaf]!r} times the '
                f'width factor {factor:g} (width_mults entry {mult:g} on '
                f'{keys[0]!r}) is not a whole channel count; list keys whose '
                'counts are multiples of the first key\'s, or give another '
                'width_mults/divisor')
        scaled = [int(round(s)) for s in scaled]
        parent[leaf] = (scaled[0] if isinstance(parent[leaf], int) else
                        type(parent[leaf])(scaled))
    _drop_pretrained(cfg)
    return cfg, factor


def _drop_pretrained(node: Any) -> None:
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        if node.get('pretrained') is not None:
            node['pretrained'] = None
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _drop_pretrained(value)


def leading(shape: Sequence[int]) -> tuple:
    """The index of the leading block of that shape."""
    return tuple(slice(0, s) for s in shape)


def unfit(small: dict, wide: dict) -> List[str]:
    """Names of tensors of ``small`` that are not a leading block of the
    same-named tensor of ``wide`` (missing, other rank or smaller)."""
    bad = []
    for name, tensor in small.items():
        other = wide.get(name)
        if other is None or other.dim() != tensor.dim() or any(
                s > w for s, w in zip(tensor.shape, other.shape)):
            bad.append(name)
    return bad
