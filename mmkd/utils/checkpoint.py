"""Read checkpoints under torch's safe (``weights_only``) loading."""
import pickle
import warnings

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def mmengine_globals() -> list:
    """The globals mmengine 0.10 pickles into its training checkpoints."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [
        getattr(np.dtypes, name) for name in dir(getattr(np, 'dtypes', None))
        if name.endswith('DType')
    ]
    # HistoryBuffer's pickle looks its statistics methods up with getattr
    return [
        HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype, getattr,
        *dtypes
    ]


def load_checkpoint_file(path: str, map_location: str = 'cpu') -> dict:
    """Load a checkpoint file or URL with torch's safe loading.

    Model-zoo weights, exported students and checkpoints written with
    :class:`mmkd.engine.ExactResumeHook` load as they are. A training
    checkpoint that plain mmengine 0.10 wrote (its message hub holds
    ``HistoryBuffer``s, which torch >= 2.6 refuses) is loaded again with
    exactly mmengine's own types allowed, for this one call, with a warning.

    Args:
        path (str): Local path or URL.
        map_location (str): Where to put the tensors. Defaults to 'cpu'.
    """
    try:
        return CheckpointLoader.load_checkpoint(path, map_location)
    except pickle.UnpicklingError as err:
        if 'HistoryBuffer' not in str(err):
            raise
    warnings.warn(f'{path} is an mmengine training checkpoint without '
                  "ExactResumeHook's safe format; loading it with mmengine's "
                  'message-hub types allowed')
    with torch.serialization.safe_globals(mmengine_globals()):
        return CheckpointLoader.load_checkpoint(path, map_location)
