"""Taps: intermediate outputs recorded by forward hooks on named modules.

A tap names a module by its dotted name (``'backbone.layer3'``). A module
that returns a tuple can be tapped at one of its outputs with an index
suffix: ``'backbone.layers.0.1.0.attn.attn[1]'`` records the attention
weights that ``nn.MultiheadAttention`` returns second.
"""
import difflib
import re
from contextlib import contextmanager
from typing import (Any, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple)

from torch import Tensor, nn


class TapsComplete(Exception):
    """Raised inside a forward pass once every tap has what it needs."""


_INDEXED = re.compile(r'^(?P<module>.+)\[(?P<index>\d+)\]$')


def split_output_index(name: str) -> Tuple[str, Optional[int]]:
    """``'attn[1]'`` -> ``('attn', 1)``; ``'neck'`` -> ``('neck', None)``.

    Example:
        >>> split_output_index('backbone.layers.0.1.0.attn.attn[1]')
        ('backbone.layers.0.1.0.attn.attn', 1)
    """
    match = _INDEXED.match(name)
    if match is None:
        return name, None
    return match['module'], int(match['index'])


def resolve_modules(model: nn.Module, names: Iterable[str],
                    key: str) -> Dict[str, nn.Module]:
    """Map dotted module names to modules, failing with close matches.

    Args:
        model (nn.Module): The model that owns the modules.
        names (Iterable[str]): Dotted names such as ``'neck'`` or
            ``'backbone.layer3'``, each optionally with an output index
            (``'...attn[1]'``).
        key (str): The config key the names come from, for the error.
    """
    modules = dict(model.named_modules())
    found = {}
    for tap in names:
        name, _ = split_output_index(tap)
        if name not in modules:
            close = difflib.get_close_matches(name, modules, n=5, cutoff=0.5)
            hint = (
                f'close names: {close}' if close else
                'top-level modules: '
                f'{[n for n in modules if n and "." not in n]}'
            )
            raise KeyError(
                f'{key}: {type(model).__name__} has no module named '
                f'{name!r}; {hint}')
        found[tap] = modules[name]
    return found


class TapRecorder:
    """Record the outputs of named submodules of a model.

    Hooks record only inside :meth:`recording`, so validation and inference pay
    nothing for them. A module called several times in one forward pass (a head
    shared by FPN levels) yields a tuple with one output per call. When
    ``expected_calls`` is set and ``stop_early`` is on, the forward pass is cut
    short with :class:`TapsComplete` as soon as every tap has been called that
    many times, so nothing after the last needed module runs.

    Args:
        model (nn.Module): The model to tap.
        names (Sequence[str]): Dotted module names.
        key (str): The config key the names come from, for errors.
    """

    def __init__(self, model: nn.Module, names: Sequence[str],
                 key: str) -> None:
        self.names = list(dict.fromkeys(names))
        self.records: Dict[str, List[Any]] = {}
        # the version counters of each recorded output, to catch a model
        # that changes a recorded tensor in place after the hook ran
        self._versions: Dict[str, List[tuple]] = {}
        self._modules: Dict[str, str] = {}
        self.key = key
        self.expected_calls: Optional[Dict[str, int]] = None
        self.stop_early = False
        self.enabled = False
        self._handles = [
            module.register_forward_hook(self._make_hook(name, key)) for name,
            module in resolve_modules(model, self.names, key).items()
        ]

    def _make_hook(self, name: str, key: str):
        index = split_output_index(name)[1]

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not self.enabled:
                return
            if index is not None:
                if not isinstance(output, (tuple, list)) or index >= len(
                        output):
                    count = (len(output) if isinstance(output, (tuple, list))
                             else 'one (not a tuple)')
                    raise IndexError(
                        f'{key}: tap {name!r} asks for output {index}, but '
                        f'{type(module).__name__} returned {count} outputs')
                output = output[index]
            self.records.setdefault(name, []).append(output)
            self._versions.setdefault(name, []).append(versions_of(output))
            self._modules[name] = type(module).__name__
            if self.stop_early and self._complete():
                raise TapsComplete

        return hook

    def _complete(self) -> bool:
        if self.expected_calls is None:
            return False
        return all(
            len(self.records.get(name, ())) >= count
            for name, count in self.expected_calls.items())

    @contextmanager
    def recording(self, stop_early: bool = False) -> Iterator[None]:
        """Record, from empty, only inside this block.

        Args:
            stop_early (bool): Cut the forward pass short with
                :class:`TapsComplete` once every tap has been called its
                ``expected_calls`` times. Defaults to False.
        """
        self.records, self._versions = {}, {}
        self.enabled, self.stop_early = True, stop_early
        try:
            yield
        finally:
            self.enabled, self.stop_early = False, False

    def reset(self) -> None:
        """Forget what the last forward pass recorded."""
        self.records, self._versions = {}, {}

    def collect(self) -> Dict[str, Any]:
        """Return ``{name: output}``, a tuple of outputs for repeated calls."""
        missing = [name for name in self.names if name not in self.records]
        if missing:
            raise RuntimeError(
                f'taps {missing} were not called in the forward pass; tap '
                'modules that run in the loss path of the model')
        for name, calls in self.records.items():
            if any(versions_of(output) != recorded for output, recorded in
                   zip(calls, self._versions[name])):
                raise RuntimeError(
                    f'{self.key}: the output of tap {name!r} '
                    f'({self._modules[name]}) was changed in place after it '
                    'was recorded (e.g. by an inplace ReLU, or a residual '
                    '`+=`, that follows the module), so a loss would see '
                    'other values than the module returned; tap the module '
                    'whose output is final instead (e.g. the ConvModule, not '
                    'its `.bn`)')
        return {
            name: calls[0] if len(calls) == 1 else tuple(calls)
            for name, calls in self.records.items()
        }

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def versions_of(output: Any) -> tuple:
    """The in-place version counters of the tensors in a tap's output.

    Inference-mode tensors keep no counter and are skipped.
    """
    if isinstance(output, Tensor):
        return () if output.is_inference() else (output._version, )
    if isinstance(output, (tuple, list)):
        return tuple(v for item in output for v in versions_of(item))
    return ()


def levels_of(output: Any) -> List[Tensor]:
    """Flatten a tap's output into its list of tensor levels."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in levels_of(item)]
    raise TypeError(f'a tap recorded {type(output).__name__}; taps must '
                    'record tensors or (nested) sequences of tensors')
