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


def plain_config(cfg: Config, model: dict) -> Config:
    """The training config with ``model`` as its model.

    mmkd's hooks and imports, ``resume`` and ``load_from`` are dropped, so
    the result builds and runs with plain mmdet/mmseg.
    """
    cfg = copy.deepcopy(cfg)
    cfg.model = copy.deepcopy(model)
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


def student_part(model: dict) -> tuple:
    """``(prefix, config)`` of the model a training config deploys: a
    distiller's student (``'student.'``), or NetAug's base model
    (``'model.'``, or ``'model.student.'`` when NetAug wraps a distiller).
    """
    if str(model.get('type', '')).split('.')[-1] == 'NetAug':
        inner = model['model']
        if isinstance(inner, str):
            inner = Config.fromfile(inner).model
        if 'student' in inner:
            prefix, part = student_part(inner)
            return 'model.' + prefix, part
        return 'model.', inner
    student = model['student']
    if isinstance(student, str):
        student = Config.fromfile(student).model
    return 'student.', student


def student_config(cfg: Config) -> Config:
    """The training config with the distiller (or NetAug) replaced by the
    model it deploys: the student, or NetAug's base model.

    mmkd's hooks and imports are dropped, so the result builds and runs with
    plain mmdet/mmseg.
    """
    return plain_config(cfg, student_part(cfg.model)[1])


def export_weights(checkpoint: Union[str, dict],
                   out: str,
                   prefix: str,
                   config: Optional[Config] = None,
                   model: Optional[nn.Module] = None,
                   kind: str = 'a distiller checkpoint',
                   what: str = 'the student of the config') -> str:
    """Write the weights under ``prefix`` of a training checkpoint as a
    plain checkpoint, and ``config`` beside it as ``<out stem>_config.py``.

    The file holds ``state_dict`` and ``meta`` (``dataset_meta`` and
    versions) in plain types only, so torch's safe ``weights_only`` loading
    and ``init_detector``/``init_model`` take it without importing mmkd.

    Args:
        checkpoint (str | dict): A training checkpoint or its path.
        out (str): Path of the ``.pth`` file to write.
        prefix (str): The part's prefix in the training state dict, e.g.
            'student.'.
        config (Config, optional): The part's plain config (see
            :func:`plain_config`). Defaults to None.
        model (nn.Module, optional): The part built from its config; when
            given, the weights must fit it key for key and shape for shape,
            or nothing is written. Defaults to None.
        kind (str): What the checkpoint should be, for errors. Defaults to
            'a distiller checkpoint'.
        what (str): What ``model`` is, for errors. Defaults to 'the student
            of the config'.

    Returns:
        str: ``out``.
    """
    source = checkpoint if isinstance(checkpoint, str) else 'the checkpoint'
    if isinstance(checkpoint, str):
        checkpoint = load_checkpoint_file(checkpoint)
    state = student_state_dict(checkpoint.get('state_dict', checkpoint),
                               prefix)
    if not state:
        raise KeyError(f'the checkpoint has no {prefix}* weights: is it '
                       f'{kind}?')
    if model is not None:
        check_fit(model, state, source, what, True,
                  'export with the config it was trained with')
    old_meta = checkpoint.get('meta') or {}
    meta = dict(mmkd_version=__version__)
    for key in ('dataset_meta', 'epoch', 'iter', 'seed'):
        if key in old_meta:
            meta[key] = old_meta[key]
    save_atomically(dict(state_dict=state, meta=meta), out)
    if config is not None:
        config.dump(osp.splitext(out)[0] + '_config.py')
    return out


def export_student(checkpoint: Union[str, dict],
                   out: str,
                   cfg: Optional[Config] = None,
                   model: Optional[nn.Module] = None) -> str:
    """Write a student-only checkpoint (and its config) from a distiller's.

    See :func:`export_weights`.

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
    config, prefix = None, 'student.'
    if cfg is not None and cfg.get('model') is not None:
        config = student_config(cfg)
        prefix = student_part(cfg.model)[0]
    return export_weights(checkpoint, out, prefix, config, model)
