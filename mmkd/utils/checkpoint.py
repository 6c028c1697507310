"""Read checkpoints with torch's safe (``weights_only``) loading only.

Importing mmkd registers :func:`load_from_local` and :func:`load_from_http`
with mmengine's ``CheckpointLoader``, so every checkpoint a run reads
(``--resume``, ``load_from``, teachers, ``init_cfg``, ``tools/test.py``)
passes ``weights_only=True`` explicitly, whatever torch's default or
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` say, and names the file when it is
empty, truncated or corrupted.
"""
import hashlib
import inspect
import os
import os.path as osp
import pickle
import re
import warnings
from typing import Any, Iterator, Tuple
from urllib.parse import urlparse

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.runner.checkpoint import CheckpointLoader

CHECKSUM = 'tensor_sha256'
_CHECKPOINT_NAME = re.compile(r'^(?:epoch|iter)_(\d+)\.pth$')

if 'weights_only' not in inspect.signature(torch.load).parameters:
    raise ImportError(
        f'mmkd needs torch.load(weights_only=True), which torch '
        f'{torch.__version__} lacks: without it a checkpoint can run code. '
        'Install torch >= 2.6 (see the README)')


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that is empty, truncated or fails its checksum."""


def _history_buffer_method(owner: Any, name: str) -> Any:
    """``getattr`` as HistoryBuffer's pickle uses it, and for nothing else.

    mmengine pickles ``HistoryBuffer._statistics_methods`` as
    ``getattr(HistoryBuffer, 'min')`` etc.; a general ``getattr`` would let
    a crafted file reach any attribute (``builtins.__import__``).
    """
    from mmengine.logging import HistoryBuffer
    methods = {'min', 'max', 'mean', 'current'}
    methods.update(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in methods:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({owner!r}, {name!r}): checkpoints may only name '
        "HistoryBuffer's statistics methods")


def mmengine_globals() -> list:
    """The globals mmengine 0.10 pickles into its training checkpoints:
    its ``HistoryBuffer``, numpy arrays, scalars and dtypes, and a
    ``getattr`` that only returns HistoryBuffer's statistics methods."""
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
    return [
        HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype,
        (_history_buffer_method, 'builtins.getattr'), *dtypes
    ]


def _tensors(obj: Any, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f'{prefix}/{key}')
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f'{prefix}/{i}')


def tensor_checksum(checkpoint: dict) -> str:
    """SHA-256 of every tensor of a checkpoint: its place, dtype, shape and
    bytes (the checksum entry itself excluded).

    Example:
        >>> a = tensor_checksum(dict(w=torch.zeros(2)))
        >>> a == tensor_checksum(dict(w=torch.zeros(2)))
        True
        >>> a == tensor_checksum(dict(w=torch.tensor([0., 1e-30])))
        False
    """
    digest = hashlib.sha256()
    body = {k: v for k, v in checkpoint.items() if k != CHECKSUM}
    for place, tensor in _tensors(body):
        tensor = tensor.detach().cpu().contiguous()
        header = f'{place}:{tensor.dtype}:{tuple(tensor.shape)};'
        digest.update(header.encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _other_checkpoints(path: str) -> str:
    """Where to go back to when ``path`` cannot be used."""
    folder = osp.dirname(osp.abspath(path))
    names = [
        n for n in os.listdir(folder)
        if _CHECKPOINT_NAME.match(n) and n != osp.basename(path)
    ]
    if not names:
        return f'no other epoch_*/iter_* checkpoint is in {folder}'
    names.sort(key=lambda n: int(_CHECKPOINT_NAME.match(n).group(1)))
    previous = osp.join(folder, names[-1])
    return (f'the latest other checkpoint there is {previous} '
            f'(resume from it with --resume {previous})')


def verify_checksum(checkpoint: Any, path: str) -> None:
    """Raise :class:`CorruptCheckpointError` when the tensors of a
    checkpoint no longer match the checksum written with them."""
    if not isinstance(checkpoint, dict) or CHECKSUM not in checkpoint:
        return
    if tensor_checksum(checkpoint) != checkpoint[CHECKSUM]:
        raise CorruptCheckpointError(
            f'{path} is corrupted: its tensors do not match the checksum '
            f'written with them ({CHECKSUM}); {_other_checkpoints(path)}')


def _refused(err: Exception, path: str) -> pickle.UnpicklingError:
    # torch's own text advises weights_only=False, i.e. running the file
    found = re.search(r'GLOBAL (\S+)', str(err))
    reason = re.search(r'WeightsUnpickler error:\s*([^\n]+)', str(err))
    what = (f'it holds {found.group(1)}, which is not a tensor, number, '
            'string or container' if found else
            reason.group(1) if reason else str(err).splitlines()[0])
    return pickle.UnpicklingError(
        f'{path} was refused by safe (weights_only) loading: {what}. mmkd '
        'loads checkpoints no other way, since such a file can run code; if '
        'you made it, save only its state_dict tensors')


def _torch_load(path: str, map_location) -> Any:
    size = osp.getsize(path)
    if size == 0:
        raise CorruptCheckpointError(
            f'{path} is empty (0 bytes): its writing was interrupted or the '
            f'copy failed; {_other_checkpoints(path)}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'Weights only load failed' in str(err):
            raise
        broken = err
    except (EOFError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and 'PytorchStreamReader' not in \
                str(err):
            raise
        broken = err
    raise CorruptCheckpointError(
        f'{path} ({size} bytes) is truncated or corrupted: '
        f'{type(broken).__name__}: {str(broken).splitlines()[0]}; '
        f'{_other_checkpoints(path)}') from None


def load_from_local(filename: str, map_location=None) -> Any:
    """Load a local checkpoint with ``weights_only=True``.

    Model-zoo weights, exported students and checkpoints written with
    :class:`mmkd.engine.ExactResumeHook` load as they are, and their
    checksum, if any, is verified. A training checkpoint that plain mmengine
    0.10 wrote (its message hub holds ``HistoryBuffer``\\ s, which safe
    loading refuses) is loaded again with :func:`mmengine_globals` allowed,
    for this one call, with a warning.
    """
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    try:
        checkpoint = _torch_load(path, map_location)
    except pickle.UnpicklingError as err:
        if 'HistoryBuffer' not in str(err):
            raise _refused(err, path) from None
        warnings.warn(f'{path} is an mmengine training checkpoint without '
                      "ExactResumeHook's safe format; loading it with "
                      "mmengine's message-hub types allowed")
        try:
            with torch.serialization.safe_globals(mmengine_globals()):
                checkpoint = _torch_load(path, map_location)
        except pickle.UnpicklingError as err:
            raise _refused(err, path) from None
    verify_checksum(checkpoint, path)
    return checkpoint


def load_from_http(filename: str,
                   map_location=None,
                   model_dir=None,
                   progress: bool = False) -> Any:
    """Download into torch's hub cache (local rank 0 first), then load the
    cached file as :func:`load_from_local` does."""
    folder = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(folder, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()

    def download():
        if not osp.isfile(cached):
            os.makedirs(folder, exist_ok=True)
            torch.hub.download_url_to_file(filename, cached, progress=progress)

    if rank == 0:
        download()
    if world_size > 1:
        barrier()
        if rank > 0:
            download()
    return load_from_local(cached, map_location)


CheckpointLoader.register_scheme('', load_from_local, force=True)
CheckpointLoader.register_scheme(('http://', 'https://'),
                                 load_from_http,
                                 force=True)


def load_checkpoint_file(path: str, map_location: str = 'cpu') -> Any:
    """Load a checkpoint file or URL with torch's safe loading.

    Args:
        path (str): Local path or URL.
        map_location (str): Where to put the tensors. Defaults to 'cpu'.
    """
    return CheckpointLoader.load_checkpoint(path, map_location)
