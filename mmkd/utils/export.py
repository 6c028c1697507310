"""Student-only checkpoints that plain mmdet/mmseg load."""
import copy
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config
from torch import nn

from mmkd.version import __version__
from .atomic import save_atomically
from .checkpoint import load_checkpoint_file
from .fit import check_fit


def student_state_dict(state_dict: dict, prefix: str = 'student.') -> dict:
    """The student's weights, without the distiller's prefix, adapters or
    anything else."""
    return {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }


def student_config(cfg: Config) -> Config:
    """The training config with the distiller replaced by its student.

    mmkd's hooks and imports are dropped, so the result builds and runs with
    plain mmdet/mmseg.
    """
    cfg = copy.deepcopy(cfg)
    student = cfg.model.student
    if isinstance(student, str):
        student = Config.fromfile(student).model
    cfg.model = student
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', []) or []
        if not str(h.get('type', '')).startswith('mmkd.')
    ]
    imports = cfg.get('custom_imports')
    if imports:
        kept = [
            m for m in imports.get('imports', []) if m.split('.')[0] != 'mmkd'
        ]
        if kept:
            cfg.custom_imports = dict(imports, imports=kept)
        else:
            cfg.pop('custom_imports')
    for key in ('resume', 'load_from'):
        cfg.pop(key, None)
    return cfg


def export_student(checkpoint: Union[str, dict],
                   out: str,
                   cfg: Optional[Config] = None,
                   model: Optional[nn.Module] = None) -> str:
    """Write a student-only checkpoint (and its config) from a distiller's.

    The file holds ``state_dict`` (student weights) and ``meta``
    (``dataset_meta`` and versions) in plain types only, so torch's safe
    ``weights_only`` loading and ``init_detector``/``init_model`` take it
    without importing mmkd.

    Args:
        checkpoint (str | dict): A distiller checkpoint or its path.
        out (str): Path of the ``.pth`` file to write.
        cfg (Config, optional): The distillation config; when given, the
            student's config is written beside ``out`` as
            ``<out stem>_config.py``. Defaults to None.
        model (nn.Module, optional): The student built from its config;
            when given, the weights must fit it key for key and shape for
            shape, or nothing is written. Defaults to None.

    Returns:
        str: ``out``.
    """
    source = checkpoint if isinstance(checkpoint, str) else 'the checkpoint'
    if isinstance(checkpoint, str):
        checkpoint = load_checkpoint_file(checkpoint)
    state = student_state_dict(checkpoint.get('state_dict', checkpoint))
    if not state:
        raise KeyError('the checkpoint has no student.* weights: is it a '
                       'distiller checkpoint?')
    if model is not None:
        check_fit(model, state, source, 'the student of the config', True,
                  'export with the config it was trained with')
    old_meta = checkpoint.get('meta') or {}
    meta = dict(mmkd_version=__version__)
    for key in ('dataset_meta', 'epoch', 'iter', 'seed'):
        if key in old_meta:
            meta[key] = old_meta[key]
    save_atomically(dict(state_dict=state, meta=meta), out)
    if cfg is not None and cfg.get('model') is not None:
        student_config(cfg).dump(osp.splitext(out)[0] + '_config.py')
    return out
