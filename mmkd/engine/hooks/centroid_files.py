"""Which saved ND centroids a run may reuse, and saving them."""
import hashlib
import json
import os.path as osp
from typing import Optional

import torch

from mmkd.utils.atomic import save_atomically, write_bytes_atomically
from mmkd.utils.checkpoint import load_checkpoint_file, tensor_checksum

SUFFIX = '.fingerprint'


def fingerprint(runner, model, settings: dict) -> str:
    """SHA-256 of what the centroids depend on: the teacher's weights, the
    training data config and the hook's settings."""
    data = (runner.cfg.get('train_dataloader') or {}).get('dataset')
    text = json.dumps(
        dict(
            teacher=tensor_checksum(dict(model.teacher.state_dict())),
            data=data,
            settings=settings),
        sort_keys=True,
        default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def reusable_centroids(runner, path: str,
                       stamp: Optional[str]) -> Optional[torch.Tensor]:
    """The centroids at ``path`` when this run may use them, logging why;
    None when they must be computed.

    A file given by the user (``stamp`` None) is used as it is. A saved file
    is reused when its fingerprint matches, or when the run resumed from a
    checkpoint (it continues with the centroids it started with); otherwise
    it is stale: computed for another teacher, data or settings.
    """
    if stamp is None:
        runner.logger.info(f'ND centroids loaded from file={path!r}')
        return load_checkpoint_file(path)
    if not osp.isfile(path):
        return None
    saved = None
    if osp.isfile(path + SUFFIX):
        with open(path + SUFFIX) as f:
            saved = f.read().strip()
    if saved == stamp:
        runner.logger.info(
            f'ND centroids reused from {path}: same teacher weights, data '
            f'and settings (fingerprint {stamp[:12]})')
        return load_checkpoint_file(path)
    why = ('computed for another teacher, data or settings'
           if saved else 'no fingerprint: computed for an unknown teacher')
    if runner.iter == 0:
        runner.logger.warning(f'ND centroids in {path} are stale ({why}); '
                              'computing them again')
        return None
    runner.logger.warning(
        f'ND centroids reused from {path} for the resumed run ({why}): '
        'it continues with the centroids it started with')
    return load_checkpoint_file(path)


def save_centroids(centers: torch.Tensor, path: str, stamp: str) -> None:
    """Write the centroids, then their fingerprint, each atomically."""
    save_atomically(centers, path)
    write_bytes_atomically(stamp.encode(), path + SUFFIX)
