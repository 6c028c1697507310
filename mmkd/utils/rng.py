"""Run something without moving the training's random generators."""
import random
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def rng_kept():
    """Restore Python's, numpy's and torch's (CPU and CUDA) generators on
    exit, so that work done inside (a pass over other batches, a probe)
    leaves the training's random stream where it was.

    Example:
        >>> import torch
        >>> with rng_kept():
        ...     a = torch.rand(1)
        >>> torch.equal(a, torch.rand(1))
        True
    """
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.cuda.get_rng_state_all()
             if torch.cuda.is_initialized() else None)
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if state[3] is not None:
            torch.cuda.set_rng_state_all(state[3])
