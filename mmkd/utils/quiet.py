"""Initialise a model without mmengine's per-parameter INFO log."""
from mmengine.logging import MMLogger
from torch import nn


def init_weights_quietly(model: nn.Module) -> None:
    """``model.init_weights()`` with the current logger at WARNING: mmengine
    logs every parameter's initialisation at INFO, which buries a tool's
    own output."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
