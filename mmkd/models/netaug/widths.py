"""Wider copies of a model config, for NetAug's augmented models."""
import copy
import functools
import math
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import ConfigDict
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode


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


#: ``{dim: [piece sizes]}`` of one tensor whose channels along ``dim`` are
#: a concatenation (see :func:`concat_layouts`); other dims are one piece
Layout = Dict[int, List[int]]


def block(shape: Sequence[int], big_shape: Sequence[int],
          layout: Optional[Layout] = None,
          big_layout: Optional[Layout] = None) -> tuple:
    """The index, into a tensor of ``big_shape``, of the block that holds a
    tensor of ``shape`` nested in it: its leading block, except along the
    dims of ``layout``, where the channels are concatenated pieces and each
    piece is the leading block of the same piece of ``big_layout``.

    Example:
        >>> import torch
        >>> big = torch.arange(10)  # pieces of 6 and 4
        >>> big[block((5, ), (10, ), {0: [3, 2]}, {0: [6, 4]})]
        tensor([0, 1, 2, 6, 7])
    """
    layout, big_layout = layout or {}, big_layout or {}
    if not layout and not big_layout:
        return leading(shape)
    index = []
    for dim in range(len(shape)):
        view = [1] * len(shape)
        view[dim] = -1
        index.append(
            positions(shape, big_shape, layout, big_layout, dim).view(view))
    return tuple(index)


def positions(shape: Sequence[int], big_shape: Sequence[int],
              layout: Optional[Layout], big_layout: Optional[Layout],
              dim: int) -> Tensor:
    """Where the channels along ``dim`` of a tensor of ``shape`` sit in one
    of ``big_shape`` that it nests in (see :func:`block`).

    Example:
        >>> positions((5, 2), (10, 3), {0: [3, 2]}, {0: [6, 4]}, 0)
        tensor([0, 1, 2, 6, 7])
    """
    pieces = (layout or {}).get(dim, [shape[dim]])
    big_pieces = (big_layout or {}).get(dim, [big_shape[dim]])
    if len(pieces) != len(big_pieces) or any(
            s > b for s, b in zip(pieces, big_pieces)):
        raise ValueError(f'pieces {pieces} do not nest in {big_pieces}')
    starts = [sum(big_pieces[:i]) for i in range(len(big_pieces))]
    return torch.cat([
        torch.arange(start, start + s) for start, s in zip(starts, pieces)
    ])


def unfit(small: dict, wide: dict, layouts: Optional[dict] = None,
          wide_layouts: Optional[dict] = None) -> List[str]:
    """Names of tensors of ``small`` that do not nest in the same-named
    tensor of ``wide`` (missing, other rank, smaller, or concatenated from
    other pieces; ``layouts`` as :func:`concat_layouts` returns them)."""
    layouts, wide_layouts = layouts or {}, wide_layouts or {}
    bad = []
    for name, tensor in small.items():
        other = wide.get(name)
        if other is None or other.dim() != tensor.dim() or any(
                s > w for s, w in zip(tensor.shape, other.shape)):
            bad.append(name)
            continue
        try:
            block(tensor.shape, other.shape, layouts.get(name),
                  wide_layouts.get(name))
        except ValueError:
            bad.append(name)
    return bad


class _Concatenations(TorchFunctionMode):
    """Records the channel pieces of every concatenation along dim 1."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces = {}  # id(output) -> (weakref(output), [sizes])

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in (torch.cat, torch.concat) and isinstance(out, Tensor):
            tensors = args[0] if args else kwargs.get('tensors')
            dim = args[1] if len(args) > 1 else kwargs.get('dim', 0)
            if out.dim() >= 2 and dim % out.dim() == 1:
                self.pieces[id(out)] = (weakref.ref(out),
                                        [t.shape[1] for t in tensors])
        return out

    def of(self, tensor: Tensor) -> Optional[List[int]]:
        """The pieces of ``tensor`` if it is a recorded concatenation."""
        found = self.pieces.get(id(tensor))
        if found is not None and found[0]() is tensor:
            return found[1]
        return None


def concat_layouts(model: nn.Module, run: Callable[[], Any]) -> dict:
    """``{tensor name: layout}`` of the parameters and buffers whose input
    channels are a concatenation along dim 1, read off one forward
    (``run``): a convolution or a linear layer reading a ``torch.cat``
    output directly (its weight's dim 1), or a BatchNorm doing so (its
    weight, bias and statistics' dim 0). PSPNet's bottleneck reads
    ``[input, pooled maps]``: in a wider model each piece is wider, so the
    base's weights for the pooled maps sit after the wide input's
    channels, not after the base's.

    Raises:
        ValueError: A grouped convolution reads a concatenation.
    """
    recorder = _Concatenations()
    layouts = {}

    def read(name, module, inputs):
        pieces = recorder.of(inputs[0]) if inputs else None
        if pieces is None:
            return
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            if getattr(module, 'groups', 1) != 1:
                raise ValueError(
                    f'model.width_keys: {name}, a grouped convolution, '
                    'reads a concatenation of channels, whose pieces NetAug '
                    'cannot nest group by group')
            layouts[f'{name}.weight'] = {1: list(pieces)}
        elif isinstance(module, nn.modules.batchnorm._NormBase):
            for tensor in ('weight', 'bias', 'running_mean', 'running_var'):
                if getattr(module, tensor, None) is not None:
                    layouts[f'{name}.{tensor}'] = {0: list(pieces)}

    handles = [
        module.register_forward_pre_hook(functools.partial(read, name))
        for name, module in model.named_modules()
    ]
    try:
        with recorder:
            run()
    finally:
        for handle in handles:
            handle.remove()
    return layouts
