"""Parse the ``losses`` entries of a distiller config into loss specs."""
import difflib
import inspect
from typing import Dict, NamedTuple, Set, Tuple, Union

from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from torch import nn

from mmkd.registry import MODELS
from .sources import check_source

ADAPTER_MODES = ('auto', True, False)
#: mmkd's own keys of a loss entry; the others are the loss's arguments.
SPEC_KEYS = ('student', 'teacher', 'adapter', 'inputs')


class LossSpec(NamedTuple):
    """Where one distillation loss takes its inputs from.

    ``student`` and ``teacher`` name a tapped module of each model or a
    paired record ``'<pairing>.<key>'``; they are the loss's first two
    arguments. ``inputs`` maps further keyword arguments to sources: plain
    pairing records, batch fields ``'batch.<field>'`` or constants
    ``'const.<name>'`` (see :mod:`mmkd.models.distillers.sources`).
    """
    student: str
    teacher: str
    adapter: Union[str, bool]
    inputs: Dict[str, str]


def check_arguments(cfg: dict, key: str) -> None:
    """Refuse an argument the registered class does not take, naming the
    config key, the close match and the valid arguments."""
    cls = MODELS.get(cfg.get('type')) if isinstance(cfg.get('type'),
                                                    str) else None
    if not inspect.isclass(cls):
        return
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n in params if n != 'self']
    for arg in cfg:
        if arg != 'type' and arg not in valid:
            close = difflib.get_close_matches(arg, valid, n=1)
            hint = f'; did you mean {close[0]!r}?' if close else ';'
            raise TypeError(
                f'{key}.{arg}: {cls.__name__} has no argument {arg!r}{hint} '
                f'its arguments are {valid}')
    if isinstance(cfg.get('loss'), dict) and 'type' in cfg['loss']:
        check_arguments(cfg['loss'], f'{key}.loss')  # wrappers (TeKAP)


def build_registered(cfg: dict, key: str, kind: str = 'loss') -> nn.Module:
    """Build a loss or pairing in mmkd's scope; an unknown type lists
    what exists, and a bad argument names its config key."""
    with DefaultScope.overwrite_default_scope('mmkd'):
        try:
            check_arguments(cfg, key)
            return MODELS.build(cfg)
        except KeyError as err:
            if 'is not in the' not in str(err):
                raise
            suffix = 'Loss' if kind == 'loss' else 'Pairing'
            known = sorted(n for n in MODELS.module_dict
                           if n.endswith(suffix) or n == 'TeKAP')
            raise KeyError(
                f"{key}.type: {cfg.get('type')!r} is not a registered {kind}; "
                f'mmkd has {known}, and mmdet/mmseg losses work with their '
                "scope ('mmdet.KnowledgeDistillationKLDivLoss')") from err
        except (TypeError, ValueError) as err:
            if str(err).startswith(key):
                raise
            raise type(err)(f'{key}: {err}') from err


def parse_losses(losses: Dict[str, dict], student: nn.Module,
                 teacher: nn.Module, pairings: Dict[str, Tuple[str, ...]]
                 ) -> Tuple[Dict[str, LossSpec], nn.ModuleDict]:
    """Check every loss entry and build its loss module.

    Args:
        losses (dict): ``model.losses`` of the config.
        student (nn.Module): The student, to check its tap names.
        teacher (nn.Module): The teacher, to check its tap names.
        pairings (dict): ``{pairing name: (paired keys, plain keys)}``.
    """
    if not isinstance(losses, (dict, ConfigDict)) or not losses:
        raise ValueError('model.losses must be a non-empty dict of '
                         f'{{name: loss config}}, got {losses!r}')
    specs, modules = {}, nn.ModuleDict()
    for name, cfg in losses.items():
        key = f'model.losses.{name}'
        if not name.isidentifier():
            raise ValueError(f'{key}: loss names must be identifiers')
        if name.endswith('lr'):
            raise ValueError(
                f"{key}: mmengine logs every key ending in 'lr' "
                f"(distill.{name}) as a learning rate; rename the loss")
        cfg = dict(cfg)
        adapter = cfg.pop('adapter', 'auto')
        if adapter not in ADAPTER_MODES:
            raise ValueError(f'{key}.adapter is {adapter!r}; valid values '
                             f'are {ADAPTER_MODES}')
        sides = {}
        for side, model in (('student', student), ('teacher', teacher)):
            source = cfg.pop(side, None)
            if not isinstance(source, str):
                raise KeyError(
                    f'{key}.{side} must name the {side} module to tap (e.g. '
                    "'neck' or 'backbone.layer3') or a paired record "
                    f"('<pairing>.<key>'); got {source!r}")
            check_source(source, f'{key}.{side}', pairings, model)
            sides[side] = source
        inputs = dict(cfg.pop('inputs', None) or {})
        for arg, source in inputs.items():
            check_source(source, f'{key}.inputs.{arg}', pairings)
        specs[name] = LossSpec(sides['student'], sides['teacher'], adapter,
                               inputs)
        modules[name] = build_registered(cfg, key)
        _check_inputs(type(modules[name]), cfg, inputs, key)
    return specs, modules


def _check_inputs(cls: type, cfg: dict, inputs: dict, key: str) -> None:
    """Refuse an input the loss cannot take or that is set twice, and a
    loss whose own arguments clash with mmkd's keys."""
    for arg in inputs:
        if arg in cfg:
            raise KeyError(
                f'{key}.inputs.{arg}: {arg!r} is also set as an argument of '
                f'the loss ({key}.{arg}); set it in one place')
    if inspect.isclass(cls):
        taken = set(inspect.signature(cls.__init__).parameters) & set(
            SPEC_KEYS)
        if taken:
            raise TypeError(
                f'{key}: {cls.__name__} takes an argument named '
                f'{sorted(taken)[0]!r}, which is a key mmkd reads itself '
                f'{SPEC_KEYS}; rename the loss\'s argument')
    forward = getattr(cls, 'forward', None)
    if not inputs or not inspect.isfunction(forward):
        return
    params = dict(list(inspect.signature(forward).parameters.items())[3:])
    elementwise = getattr(cls, 'elementwise', None)
    if any(p.kind is p.VAR_KEYWORD
           for p in params.values()) and inspect.isfunction(elementwise):
        # a DistillLoss: forward passes further arguments to elementwise
        params = {n: p for n, p in params.items()
                  if p.kind is not p.VAR_KEYWORD}
        params.update(
            list(inspect.signature(elementwise).parameters.items())[3:])
    if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
           for p in params.values()):
        return  # a wrapper (TeKAP) passes them on
    valid = list(params)
    for arg in inputs:
        if arg not in valid:
            raise KeyError(
                f'{key}.inputs.{arg}: {cls.__name__}.forward takes no '
                f'argument {arg!r}; its further arguments are {valid}')


def tap_names(specs: Dict[str, LossSpec], side: str,
              pairings: Dict[str, Tuple]) -> Set[str]:
    """The module names of ``side`` that the losses tap directly."""
    names = (getattr(s, side) for s in specs.values())
    return {n for n in names if n.split('.')[0] not in pairings}
