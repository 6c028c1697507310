"""Files that are either complete or absent: write aside, then rename."""
import io
import os
import os.path as osp

import torch

PARTIAL = '.partial'


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder or '.', os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(partial: str, path: str) -> None:
    """Flush ``partial`` to disk and rename it to ``path`` in one step.

    ``os.replace`` is atomic on POSIX and Windows: a reader (or a resumed
    run) sees the old ``path`` or the complete new one, never a part.
    """
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, path)
    _fsync_dir(osp.dirname(path))


def write_bytes_atomically(data: bytes, path: str) -> str:
    """Write ``data`` to ``path`` through ``<path>.partial``.

    Example:
        >>> import tempfile
        >>> path = tempfile.mktemp()
        >>> _ = write_bytes_atomically(b'done', path)
        >>> open(path, 'rb').read(), os.path.exists(path + '.partial')
        (b'done', False)
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path + PARTIAL, 'wb') as f:
        f.write(data)
    publish(path + PARTIAL, path)
    return path


def save_atomically(obj, path: str) -> str:
    """``torch.save(obj, path)``, with ``path`` complete or untouched."""
    with io.BytesIO() as buffer:
        torch.save(obj, buffer)
        return write_bytes_atomically(buffer.getvalue(), path)
