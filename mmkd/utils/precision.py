"""The frozen teacher's forward in reduced precision.

The teacher is never back-propagated, so its forward can run under autocast
in bf16 (or fp16) while the student trains in whatever precision the user
chose (fp32, or ``--amp``). Its records come back in the student's dtype
before any loss sees them. ``model.teacher.precision`` picks it:

- ``'auto'`` (the default): bf16 on CUDA devices that support it, else
  fp16; full precision elsewhere (CPU);
- ``'bf16'`` / ``'fp16'``: that dtype on any device (CPU autocast included);
- ``'fp32'``: full precision, also inside ``--amp``'s autocast.
"""
import contextlib
from typing import Any, Collection, Optional, Sequence

import torch
from torch import nn

PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')
_DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def check_precision(value: Any, key: str) -> str:
    """Return ``value`` if it is a valid precision, else raise naming
    ``key``."""
    if value not in PRECISIONS:
        raise ValueError(f'{key} must be one of {PRECISIONS} (the teacher\'s '
                         f'forward precision; fp32 turns autocast off), got '
                         f'{value!r}')
    return value


def autocast_dtype(precision: str,
                   device: torch.device) -> Optional[torch.dtype]:
    """The dtype the teacher runs in on ``device``; None for full
    precision."""
    if precision != 'auto':
        return _DTYPES[precision]
    if device.type != 'cuda':
        return None
    return (torch.bfloat16
            if torch.cuda.is_bf16_supported() else torch.float16)


#: modules whose frozen weights are held in the reduced dtype during the
#: teacher's forward (exact types: a subclass may read its weight in other
#: ops, e.g. weight standardisation, where a bf16 weight would change them)
CAST_ONCE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _reduced_copy(module: nn.Module, name: str, dtype: torch.dtype,
                  channels_last: bool = False) -> torch.Tensor:
    """The module's copy of its parameter ``name`` in ``dtype`` (and NHWC
    for 4-d weights with ``channels_last``), made anew when the parameter
    moved or changed (in-place loads bump its version)."""
    param = getattr(module, name)
    key = (param.data_ptr(), param._version, dtype, channels_last)
    copies = module.__dict__.setdefault('_reduced_copies', {})
    if name not in copies or copies[name][0] != key:
        copy = param.detach().to(dtype)
        if channels_last and copy.dim() == 4:
            copy = copy.contiguous(memory_format=torch.channels_last)
        copies[name] = (key, copy)
    return copies[name][1]


@contextlib.contextmanager
def weights_in(model: nn.Module,
               dtype: Optional[torch.dtype],
               channels_last: bool = False,
               skip: Collection[nn.Module] = ()):
    """Hold ``model``'s frozen conv and linear weights in ``dtype`` (their
    own where None), 4-d ones in NHWC with ``channels_last``, for the
    duration; modules in ``skip`` are left alone.

    Autocast casts them to ``dtype`` on every call (it caches casts only of
    parameters that require grad, which a frozen teacher's do not): extra
    kernels in every layer, the likely reason a bf16-autocast teacher was
    slower than an fp32 one on an H100 at batch 2 (docs/gpu.md). Here the
    same casts are made once and kept until the weights change, so the
    outputs are identical to autocast's, for the memory of one
    reduced-precision copy.
    """
    modules = model.__dict__.get('_cast_once_modules')
    if modules is None:  # found once: the teacher's structure is fixed
        modules = [m for m in model.modules() if type(m) in CAST_ONCE]
        model.__dict__['_cast_once_modules'] = modules
    swapped = []
    try:
        for module in modules:
            if module in skip:
                continue
            for name in ('weight', 'bias'):
                param = getattr(module, name)
                if (param is None or param.requires_grad
                        or param.dtype != torch.float32):
                    continue
                layout = channels_last and param.dim() == 4
                if dtype is None and not layout:
                    continue
                swapped.append((param, param.data))
                param.data = _reduced_copy(module, name, dtype
                                           or param.dtype, layout)
        yield
    finally:
        for param, data in swapped:
            param.data = data


@contextlib.contextmanager
def teacher_forward(precision: str,
                    device: torch.device,
                    model: Optional[nn.Module] = None,
                    fold_pairs: Sequence[tuple] = (),
                    channels_last: bool = False):
    """``no_grad``, and autocast to the teacher's precision on ``device``
    (autocast off for full precision), with ``model``'s weights cast once
    (:func:`weights_in`), the BatchNorms of ``fold_pairs`` folded into
    their convolutions (:func:`mmkd.utils.fast_teacher.bn_folded`) and the
    conv weights in NHWC with ``channels_last``. Yields the reduced dtype
    or None."""
    from mmkd.utils.fast_teacher import bn_folded
    dtype = autocast_dtype(precision, device)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        if dtype is None:
            stack.enter_context(torch.autocast(device.type, enabled=False))
        else:
            # no cast cache: it holds only casts of weights that require
            # grad (none here), and CUDA graph capture forbids it
            stack.enter_context(
                torch.autocast(device.type, dtype=dtype, cache_enabled=False))
        if fold_pairs:
            stack.enter_context(bn_folded(fold_pairs, dtype, channels_last))
        if model is not None and (dtype is not None or channels_last):
            stack.enter_context(
                weights_in(model, dtype, channels_last,
                           {conv
                            for conv, _ in fold_pairs}))
        yield dtype


def map_tensors(obj: Any, fn) -> Any:
    """``obj`` with ``fn`` applied to every tensor in it (through tuples,
    named tuples, lists and dicts); anything else as it is."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, map_tensors(v, fn)) for k, v in obj.items())
    if isinstance(obj, (tuple, list)):
        mapped = [map_tensors(v, fn) for v in obj]
        return type(obj)(mapped) if not hasattr(obj, '_fields') else type(
            obj)(*mapped)
    return obj


def cast_floats(obj: Any, dtype: Optional[torch.dtype] = None) -> Any:
    """``obj`` with every floating-point tensor in it (through tuples, lists
    and dicts) in ``dtype`` (its own where None) and the default
    (contiguous) layout; a tensor that is both already, and anything else,
    as it is."""
    return map_tensors(
        obj, lambda t: t.to(dtype or t.dtype,
                            memory_format=torch.contiguous_format)
        if t.is_floating_point() else t)


def enable_amp(cfg) -> bool:
    """Switch a config's ``optim_wrapper`` to mmengine's ``AmpOptimWrapper``
    with dynamic loss scaling, as ``tools/train.py --amp`` does (with
    mmkd's ``DistillerOptimWrapperConstructor`` the top-level keys go to
    the student's entry). Returns False where the config already has it."""
    if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return False
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    return True
