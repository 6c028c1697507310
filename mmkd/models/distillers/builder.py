"""Build the student and the frozen teacher from their configs."""
import copy
import os.path as osp
import warnings
from typing import Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from torch import nn

from mmkd.utils.checkpoint import load_checkpoint_file
from mmkd.utils.fast_teacher import SWITCHES, check_switch
from mmkd.utils.fit import mismatch_report
from mmkd.utils.precision import check_precision

TEACHER_KEYS = ('config', 'checkpoint', 'strict', 'precision', 'fold_bn',
                'channels_last', 'cuda_graph')


def load_model_config(cfg: Union[str, dict],
                      key: str) -> Tuple[dict, Optional[str]]:
    """Return ``(model_cfg, scope)`` from a config path or a model dict.

    A path (local, or ``mmdet::``/``mmseg::``) gives its ``model`` and its
    ``default_scope``; a dict gives itself and its ``_scope_`` if any.
    """
    if isinstance(cfg, (dict, ConfigDict)):
        cfg = ConfigDict(cfg)
        return cfg, cfg.get('_scope_')
    if not isinstance(cfg, str):
        raise TypeError(f'{key} must be a model config dict or a config path, '
                        f'got {type(cfg).__name__}')
    try:
        full = get_config(cfg) if '::' in cfg else Config.fromfile(cfg)
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise FileNotFoundError(
            f'{key}: no config at {cfg!r}; give a local path or a package '
            "config such as "
            "'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'"
        ) from err
    if 'model' not in full:
        raise KeyError(f'{key}: the config {cfg!r} defines no `model`')
    return full.model, full.get('default_scope')


def build_model(cfg: Union[str, dict], key: str) -> nn.Module:
    """Build an mmdet/mmseg model in the scope its config belongs to.

    The scope is the config file's ``default_scope``, the dict's ``_scope_``,
    the prefix of its type (``'mmseg.EncoderDecoder'``) or, failing those,
    the current default scope.
    """
    model_cfg, scope = load_model_config(cfg, key)
    # deep: mmseg's EncoderDecoder writes into its backbone's dict
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.pop('_scope_', None)
    model_type = model_cfg.get('type')
    if scope is None and isinstance(model_type, str) and '.' in model_type:
        scope = model_type.split('.')[0]  # 'mmseg.EncoderDecoder'
    if scope is None and DefaultScope.get_current_instance() is None:
        raise ValueError(
            f'{key}: cannot tell which library builds '
            f"{model_cfg.get('type')!r}"
            "; set default_scope='mmdet' (or 'mmseg') in the config, or give "
            "the model dict a '_scope_' key")
    with DefaultScope.overwrite_default_scope(scope):
        return ROOT_MODELS.build(model_cfg)


def _checkpoint_state_dict(path: str, key: str) -> dict:
    is_url = path.startswith(('http://', 'https://', 's3://', 'open-mmlab://'))
    if not is_url and not osp.isfile(path):
        raise FileNotFoundError(
            f'{key}: no file at {path!r}; give the path or URL of the '
            "teacher's trained weights (e.g. the model-zoo link in the "
            "teacher's metafile), or None to distil from an untrained teacher")
    ckpt = load_checkpoint_file(path)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    return {
        k[7:] if k.startswith('module.') else k: v
        for k, v in state.items()
    }


def load_teacher_checkpoint(teacher: nn.Module, path: str, strict: bool,
                            key: str) -> None:
    """Load ``path`` into ``teacher``; strict by default, with a clear error.

    Args:
        teacher (nn.Module): The teacher model.
        path (str): Local path or URL of the checkpoint.
        strict (bool): Whether every key and shape must match.
        key (str): The config key of the checkpoint, for errors.
    """
    state = _checkpoint_state_dict(path, key)
    report = mismatch_report(teacher, state)
    if report and strict:
        raise RuntimeError(
            f'{key}: {path!r} does not fit the teacher: {report}. Check that '
            'the checkpoint was trained with the teacher config, or set '
            'teacher.strict=False to load only what fits')
    if report:
        warnings.warn(f'{key}: loading what fits from {path!r}: {report}')
        own = teacher.state_dict()
        state = {
            k: v
            for k, v in state.items()
            if k in own and getattr(v, 'shape', None) == own[k].shape
        }
    teacher.load_state_dict(state, strict=False)


def build_teacher(cfg: dict, key: str = 'teacher') -> nn.Module:
    """Build the teacher, load its weights, freeze it and put it in eval.

    Args:
        cfg (dict): ``dict(config=..., checkpoint=..., strict=True,
            precision='auto', fold_bn='auto', channels_last='auto',
            cuda_graph=False)`` (the last four are checked here and applied
            by the distiller, see :mod:`mmkd.utils.precision` and
            :mod:`mmkd.utils.fast_teacher`).
        key (str): The config key of ``cfg``, for errors.
    """
    if not isinstance(cfg, (dict, ConfigDict)) or 'config' not in cfg:
        raise TypeError(
            f'{key} must be a dict with keys {TEACHER_KEYS}, e.g. dict('
            "config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py', "
            f"checkpoint='https://...pth'), got {cfg!r}")
    unknown = set(cfg) - set(TEACHER_KEYS)
    if unknown:
        raise KeyError(f'{key}: unknown keys {sorted(unknown)}; valid keys '
                       f'are {TEACHER_KEYS}')
    check_precision(cfg.get('precision', 'auto'), f'{key}.precision')
    for name in SWITCHES:
        check_switch(
            cfg.get(name, False), f'{key}.{name}', auto=name != 'cuda_graph')
    teacher = build_model(cfg['config'], f'{key}.config')
    checkpoint = cfg.get('checkpoint')
    if checkpoint is None:
        warnings.warn(f'{key}.checkpoint is None: the teacher keeps its '
                      'initial weights')
    else:
        load_teacher_checkpoint(teacher, checkpoint, cfg.get('strict', True),
                                f'{key}.checkpoint')
    # The weights are final: the Runner's init_weights must not touch them.
    teacher.is_init = True
    teacher.requires_grad_(False)
    return teacher.eval()


def preprocessor_stats(model: nn.Module) -> Optional[tuple]:
    """``(mean, std, channel_flip)`` of a model's image normalisation."""
    pre = getattr(model, 'data_preprocessor', None)
    if pre is None or not getattr(pre, '_enable_normalize', False):
        return None
    return pre.mean, pre.std, bool(getattr(pre, '_channel_conversion', False))


def input_converter(student: nn.Module, teacher: nn.Module):
    """A function mapping the student's normalised inputs to the teacher's.

    Returns None when both normalise the same way (the common case), so the
    teacher sees the very same tensor.
    """
    stats_s, stats_t = preprocessor_stats(student), preprocessor_stats(teacher)
    if stats_s is None or stats_t is None:
        return None
    (mean_s, std_s, flip_s), (mean_t, std_t, flip_t) = stats_s, stats_t
    if (flip_s == flip_t and torch.equal(mean_s, mean_t)
            and torch.equal(std_s, std_t)):
        return None

    def convert(inputs: torch.Tensor) -> torch.Tensor:
        raw = inputs * std_s.to(inputs) + mean_s.to(inputs)
        if flip_s != flip_t:
            raw = raw.flip(1)
        return (raw - mean_t.to(inputs)) / std_t.to(inputs)

    return convert
