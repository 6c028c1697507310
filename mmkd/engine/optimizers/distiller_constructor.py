"""One optimizer per part of a distiller (student, critic), as an
``OptimWrapperDict``."""
from typing import Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from mmkd.registry import OPTIM_WRAPPER_CONSTRUCTORS

#: Top-level keys that ``tools/train.py --amp`` sets; they go to 'student'.
AMP_KEYS = ('type', 'loss_scale', 'dtype')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DistillerOptimWrapperConstructor:
    """Build an ``OptimWrapperDict``: one optim wrapper per config entry.

    For distillers with a part trained by its own optimizer, such as the
    WGAN-GP critic of `Structured Knowledge Distillation for Semantic
    Segmentation <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR
    2019; critic lr 4e-4). Every entry but ``student`` names a child module
    of the distiller (``critic``) and optimizes its parameters; ``student``
    optimizes every other parameter (the student's and the adapters').
    Each entry is a usual optim wrapper config, built with mmengine's
    ``DefaultOptimWrapperConstructor`` (a ``paramwise_cfg`` goes inside the
    entry). A child that the model lists in ``separately_optimized`` but
    that has no entry is an error, so it never trains with the student's
    optimizer by accident. A top-level ``type``/``loss_scale``/``dtype``
    (what ``tools/train.py --amp`` sets) applies to the ``student`` entry
    only; the critic's gradient penalty stays in full precision.

    Args:
        optim_wrapper_cfg (dict): ``{name: optim wrapper config}`` with a
            ``student`` entry, plus optional top-level AMP keys.
        paramwise_cfg (dict, optional): Must be None: give it per entry.
            Defaults to None.

    Example:
        >>> from torch import nn
        >>> model = nn.Module()
        >>> model.student, model.critic = nn.Linear(2, 2), nn.Linear(2, 1)
        >>> constructor = DistillerOptimWrapperConstructor(dict(
        ...     student=dict(optimizer=dict(type='SGD', lr=0.01)),
        ...     critic=dict(optimizer=dict(type='Adam', lr=4e-4))))
        >>> wrappers = constructor(model)
        >>> sorted(wrappers.keys()), type(wrappers['critic'].optimizer)
        (['critic', 'student'], <class 'torch.optim.adam.Adam'>)
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        cfg = dict(optim_wrapper_cfg)
        self.amp = {key: cfg.pop(key) for key in AMP_KEYS if key in cfg}
        if paramwise_cfg is not None:
            raise ValueError(
                'optim_wrapper.paramwise_cfg is not used with '
                "DistillerOptimWrapperConstructor: put it in each entry, "
                'e.g. optim_wrapper.student.paramwise_cfg')
        if 'student' not in cfg:
            raise KeyError(
                'optim_wrapper.student is missing; with '
                "constructor='mmkd.DistillerOptimWrapperConstructor' give "
                'one optim wrapper config per part, e.g. dict(student=dict('
                "optimizer=dict(type='SGD', lr=0.01)), critic=dict(optimizer"
                f"=dict(type='Adam', lr=4e-4))); got keys {sorted(cfg)}")
        for name, entry in cfg.items():
            if not isinstance(entry, dict) or 'optimizer' not in entry:
                raise ValueError(
                    f'optim_wrapper.{name} must be an optim wrapper config '
                    f"with an 'optimizer', got {entry!r}")
        self.cfgs = cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        """Build the wrappers for ``model`` (or the model in a wrapper)."""
        model = model.module if is_model_wrapper(model) else model
        children = dict(model.named_children())
        for name in getattr(model, 'separately_optimized', ()):
            if name not in self.cfgs:
                raise KeyError(
                    f'optim_wrapper.{name} is missing: model.{name} trains '
                    'with its own optimizer; add e.g. optim_wrapper.'
                    f"{name}=dict(optimizer=dict(type='Adam', lr=4e-4)) "
                    f'beside optim_wrapper.student (keys now: '
                    f'{sorted(self.cfgs)})')
        own = [name for name in self.cfgs if name != 'student']
        for name in own:
            if name not in children:
                raise KeyError(
                    f'optim_wrapper.{name}: the model has no child module '
                    f'{name!r}; valid keys are student and '
                    f'{sorted(n for n in children if n != "student")}')
        rest = nn.ModuleDict({
            n: m
            for n, m in children.items() if n not in own
        })
        wrappers = {}
        for name, cfg in self.cfgs.items():
            cfg = dict(cfg, **self.amp) if name == 'student' else dict(cfg)
            paramwise = cfg.pop('paramwise_cfg', None)
            module = rest if name == 'student' else children[name]
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(
                module)
        return OptimWrapperDict(**wrappers)
