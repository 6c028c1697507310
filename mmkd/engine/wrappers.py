"""The DDP wrapper every mmkd config names: the distiller picks its kind."""
from mmengine.model import (MMDistributedDataParallel,
                            MMSeparateDistributedDataParallel)
from torch import nn

from mmkd.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class DistillerDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper of the kind the distiller asks for.

    A distiller whose ``separate_ddp`` is True (one that steps two
    optimizers in its ``train_step``, e.g. structured KD's student and
    critic) gets :class:`MMSeparateDistributedDataParallel`, which wraps and
    syncs each trainable child on its own; any other model gets
    :class:`MMDistributedDataParallel`. ``configs/_base_/distill_runtime.py``
    sets ``model_wrapper_cfg=dict(type='mmkd.DistillerDataParallel')``, so
    a method's config never has to.

    Args:
        module (nn.Module): The distiller.
        **kwargs: Passed to the chosen wrapper (``device_ids``,
            ``find_unused_parameters``, ...).
    """

    def __new__(cls, module: nn.Module, **kwargs):
        if getattr(module, 'separate_ddp', False):
            # not an instance of cls: Python skips __init__ below
            return MMSeparateDistributedDataParallel(module=module, **kwargs)
        return super().__new__(cls)

    def __init__(self, module: nn.Module, **kwargs) -> None:
        super().__init__(module=module, **kwargs)
