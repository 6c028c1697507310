"""The SFTN-trained teacher as a plain mmseg/mmdet checkpoint and config."""
import copy
from typing import Optional, Union

from mmengine.config import Config
from torch import nn

from mmkd.utils.export import export_weights, plain_config
from ..distillers.builder import load_model_config


def sftn_teacher_config(cfg: Config) -> Config:
    """The SFTN training config with the model replaced by its teacher.

    mmkd's hooks and imports are dropped, so the result builds and runs with
    plain mmseg or mmdet; a top-level ``data_preprocessor`` goes into a
    teacher model that has none, as mmengine's Runner does when training.
    """
    model, _ = load_model_config(cfg.model.teacher, 'model.teacher')
    model = copy.deepcopy(model)
    if 'data_preprocessor' not in model and cfg.get('data_preprocessor'):
        model.data_preprocessor = cfg.data_preprocessor
    return plain_config(cfg, model)


def export_sftn_teacher(checkpoint: Union[str, dict],
                        out: str,
                        cfg: Optional[Config] = None,
                        model: Optional[nn.Module] = None) -> str:
    """Write the teacher of an SFTN checkpoint (no branches) and its config.

    ``init_model`` of plain mmseg (``init_detector`` of mmdet) loads ``out``
    and ``<out stem>_config.py`` without mmkd.

    Args:
        checkpoint (str | dict): An :class:`SFTNTeacher` checkpoint or its
            path.
        out (str): Path of the ``.pth`` file to write.
        cfg (Config, optional): The SFTN config; when given, the teacher's
            config is written beside ``out`` as ``<out stem>_config.py``.
            Defaults to None.
        model (nn.Module, optional): The teacher built from its config;
            when given, the weights must fit it key for key and shape for
            shape, or nothing is written. Defaults to None.

    Returns:
        str: ``out``.
    """
    config = None
    if cfg is not None and cfg.get('model') is not None:
        config = sftn_teacher_config(cfg)
    return export_weights(
        checkpoint,
        out,
        'teacher.',
        config,
        model,
        kind='an SFTN checkpoint',
        what='the teacher of the config')
