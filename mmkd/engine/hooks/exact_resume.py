"""Checkpoints that resume under torch's safe loading, and resume exactly."""
import random
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from mmkd.registry import HOOKS
from mmkd.utils.checkpoint import CHECKSUM, tensor_checksum

_BUFFER = '__history_buffer__'


def to_safe(obj: Any) -> Any:
    """Replace what torch's ``weights_only`` loading refuses with plain data.

    ``HistoryBuffer``s (their pickles call ``getattr``) become tagged dicts,
    numpy arrays become tensors and numpy scalars Python numbers.
    """
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {
            _BUFFER: True,
            'log': torch.from_numpy(logs.copy()),
            'count': torch.from_numpy(counts.copy()),
            'max_length': obj.max_length
        }
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, to_safe(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_safe(v) for v in obj)
    return obj


def from_safe(obj: Any) -> Any:
    """Undo :func:`to_safe` for history buffers."""
    if isinstance(obj, dict) and obj.get(_BUFFER):
        return HistoryBuffer(obj['log'].numpy(), obj['count'].numpy(),
                             obj['max_length'])
    if isinstance(obj, dict):
        return type(obj)((k, from_safe(v)) for k, v in obj.items())
    return obj


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make ``--resume`` work under safe loading and match an unbroken run.

    - torch >= 2.6 loads checkpoints with ``weights_only=True`` and refuses
      mmengine 0.10's message-hub state (history buffers pickled through
      ``getattr``, numpy arrays and scalars), so resuming fails. This hook
      stores that state as tensors and plain data and rebuilds it on load;
      safe loading stays on for every checkpoint.
    - mmengine re-seeds a resumed run but does not restore where the random
      generators were, so random ops after a resume (RPN/RoI sampling,
      augmentation in the main process) differ from an uninterrupted run.
      The hook saves and restores the python, numpy, torch (and CUDA) RNG
      states, so training N iterations, stopping and resuming gives the
      weights of a straight run, with deterministic kernels.
    - It writes a SHA-256 of the checkpoint's tensors (``tensor_sha256``),
      computed last, so a checkpoint damaged on disk stops the load (mmkd's
      loader verifies it, naming the file) instead of training on garbage.

    Example:
        >>> ExactResumeHook().priority
        'VERY_LOW'
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['message_hub'] = to_safe(checkpoint['message_hub'])
        state = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = to_safe(state)
        checkpoint['meta'] = to_safe(checkpoint['meta'])
        checkpoint[CHECKSUM] = tensor_checksum(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_safe(checkpoint['message_hub'])
        state = checkpoint.get('rng_state')
        if state is None:
            return
        random.setstate(state['python'])
        name, keys, *rest = state['numpy']
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
