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
from typing import Any, Optional

import torch

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


@contextlib.contextmanager
def teacher_forward(precision: str, device: torch.device):
    """``no_grad``, and autocast to the teacher's precision on ``device``
    (autocast off for full precision). Yields the reduced dtype or None."""
    dtype = autocast_dtype(precision, device)
    autocast = (
        torch.autocast(device.type, dtype=dtype) if dtype is not None else
        torch.autocast(device.type, enabled=False))
    with torch.no_grad(), autocast:
        yield dtype


def cast_floats(obj: Any, dtype: torch.dtype) -> Any:
    """``obj`` with every floating-point tensor in it (through tuples, lists
    and dicts) cast to ``dtype``; anything else as it is."""
    if isinstance(obj, torch.Tensor):
        return (obj.to(dtype)
                if obj.is_floating_point() and obj.dtype != dtype else obj)
    if isinstance(obj, dict):
        return type(obj)((k, cast_floats(v, dtype)) for k, v in obj.items())
    if isinstance(obj, (tuple, list)):
        cast = [cast_floats(v, dtype) for v in obj]
        return type(obj)(cast) if not hasattr(obj, '_fields') else type(obj)(
            *cast)
    return obj


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
