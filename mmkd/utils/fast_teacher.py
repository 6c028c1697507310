"""The frozen teacher's forward, made cheaper without changing what it
computes.

At the batch sizes detectors train with, a teacher's forward on a GPU is
bound by the host: hundreds of small kernels, each launched from Python.
A frozen teacher in eval mode allows three savings, each a key of
``model.teacher``:

- ``fold_bn`` (``'auto'``: on CUDA when the teacher runs in reduced
  precision): every eval-mode BatchNorm that reads a
  convolution's output is folded into that convolution's weights and bias,
  and skipped. One kernel and one module call fewer per pair; the outputs
  equal the unfolded ones up to rounding. The pairs are found by tracing
  the first forward (a BatchNorm whose input is a convolution's output
  tensor), and the folded forward is checked against the plain one on that
  batch before it is used: a convolution whose output is also read
  elsewhere would fail the check, and folding is then switched off with a
  warning. Convolutions with hooks (taps) are never folded. In bf16/fp16
  NHWC cuDNN adds the bias inside the convolution, so a folded pair is two
  kernels fewer; in fp32 NCHW it adds the bias as a kernel of its own, and
  folding measured no gain (docs/gpu.md), hence not there by default.
- ``channels_last`` (``'auto'``: on CUDA when the teacher runs in reduced
  precision): the teacher's input and weights in NHWC, the layout that
  cuDNN's bf16/fp16 kernels run in without transposes. Records come back
  in the default layout.
- ``cuda_graph`` (``False``): the forward is captured as a CUDA graph per
  input shape (at most :data:`MAX_GRAPHS`; beyond that, and wherever
  capture fails, it runs eagerly) and replayed: one launch instead of
  hundreds. Each captured shape keeps the forward's working memory
  allocated. Fixed-size crops (segmentation, the benchmark) profit most.
"""
import contextlib
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmkd.utils.precision import map_tensors

SWITCHES = ('fold_bn', 'channels_last', 'cuda_graph')
#: shapes captured per teacher with ``cuda_graph=True``
MAX_GRAPHS = 8
#: relative error (by norm) of the folded forward against the plain one
#: above which folding is refused
FOLD_TOLERANCE = 1e-3


def check_switch(value: Any, key: str, auto: bool = True) -> Any:
    """Return ``value`` if it is a valid switch, else raise naming ``key``."""
    valid = (True, False, 'auto') if auto else (True, False)
    if not any(value is v or value == v and isinstance(value, str)
               for v in valid):
        raise ValueError(f'{key} must be one of {valid}, got {value!r}')
    return value


def resolve(value: Union[bool, str], default: bool) -> bool:
    """A switch's value, ``'auto'`` replaced by ``default``."""
    return default if value == 'auto' else bool(value)


def _versions(*tensors) -> tuple:
    return tuple((t.data_ptr(), t._version) if t is not None else None
                 for t in tensors)


def find_fold_pairs(model: nn.Module,
                    run: Callable[[], Any]) -> List[Tuple[nn.Conv2d, Any]]:
    """``[(conv, bn)]``: the eval-mode BatchNorms of ``model`` whose input,
    in the forward that ``run()`` performs, is an ``nn.Conv2d``'s output.
    Convolutions that already carry hooks (taps), and modules that the
    forward runs more than once, are left out."""
    outputs: Dict[int, tuple] = {}  # by id: (conv, weak ref to output)
    pairs: List[Tuple[nn.Conv2d, Any]] = []
    handles = []

    calls: Dict[nn.Module, int] = {}

    def conv_hook(module, args, output):
        calls[module] = calls.get(module, 0) + 1
        outputs[id(output)] = (module, weakref.ref(output))

    def bn_hook(module, args, output):
        calls[module] = calls.get(module, 0) + 1
        conv, ref = outputs.get(id(args[0]), (None, None)) if args else (
            None, None)
        # the very tensor (an id may be reused once a tensor is freed)
        if (conv is not None and ref() is args[0]
                and all(c is not conv for c, _ in pairs)):
            pairs.append((conv, module))

    for module in model.modules():
        if (type(module) is nn.Conv2d and not module._forward_hooks
                and not module._forward_pre_hooks):
            handles.append(module.register_forward_hook(conv_hook))
        elif (isinstance(module, _BatchNorm) and not module.training
              and module.track_running_stats
              and module.running_mean is not None):
            handles.append(module.register_forward_hook(bn_hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    # a module run more than once (shared across levels) is left alone
    return [(c, b) for c, b in pairs if calls[c] == calls[b] == 1]


def _folded(conv: nn.Conv2d, bn: Any, dtype: Optional[torch.dtype],
            channels_last: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """The conv's weight and bias with ``bn`` folded in, in ``dtype`` (fp32
    when None) and layout; made anew when any of them changed."""
    key = (_versions(conv.weight, conv.bias, bn.weight, bn.bias,
                     bn.running_mean, bn.running_var), dtype, channels_last)
    cached = conv.__dict__.get('_folded')
    if cached is None or cached[0] != key:
        scale = (bn.running_var.double() + bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        bias = -bn.running_mean.double() * scale
        if conv.bias is not None:
            bias = bias + conv.bias.double() * scale
        if bn.bias is not None:
            bias = bias + bn.bias.double()
        weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
        dtype = dtype or conv.weight.dtype
        weight = weight.to(dtype)
        if channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        # a Parameter, to stand in the conv's bias slot (which may be None)
        cached = (key, weight, nn.Parameter(bias.to(dtype),
                                            requires_grad=False))
        conv.__dict__['_folded'] = cached
    return cached[1], cached[2]


def _identity(x, *args, **kwargs):
    return x


@contextlib.contextmanager
def bn_folded(pairs: List[Tuple[nn.Conv2d, Any]],
              dtype: Optional[torch.dtype] = None,
              channels_last: bool = False):
    """For the duration, each ``(conv, bn)`` pair's conv computes
    ``bn(conv(x))`` and the BatchNorm passes its input through."""
    restore = []
    try:
        for conv, bn in pairs:
            weight, bias = _folded(conv, bn, dtype, channels_last)
            restore.append((conv, bn, conv.weight.data, conv.bias))
            conv.weight.data = weight
            conv._parameters['bias'] = bias
            bn.forward = _identity
        yield
    finally:
        for conv, bn, weight, bias in restore:
            conv.weight.data = weight
            conv._parameters['bias'] = bias
            del bn.forward


def _flat(obj: Any) -> List[torch.Tensor]:
    """The floating-point tensors in ``obj``, in order."""
    found: List[torch.Tensor] = []
    map_tensors(obj, lambda t: found.append(t) if t.is_floating_point()
                else None)
    return found


def fold_error(plain: Any, folded: Any) -> float:
    """The largest relative error (by norm) of ``folded``'s tensors against
    ``plain``'s; infinity where their structure differs."""
    a, b = _flat(plain), _flat(folded)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return float('inf')
    errors = [((x.float() - y.float()).norm() /
               x.float().norm().clamp_min(1e-12)).item()
              for x, y in zip(a, b)]
    return max(errors, default=0.0)


def clone_tensors(obj: Any) -> Any:
    """``obj`` with every tensor in it cloned."""
    return map_tensors(obj, torch.Tensor.clone)


class TeacherGraphs:
    """A function of ``(inputs, data_samples)`` captured as a CUDA graph
    per input shape and replayed.

    ``run`` must be a pure function of ``inputs``' values for a given shape
    (a teacher's forward in eval mode: no host synchronisation, no
    randomness). ``weights()`` returns a token of the weights' identity and
    versions: when it changes, the graphs are captured anew. The returned
    records are copies, valid until the caller drops them.
    """

    def __init__(self,
                 run: Callable[[torch.Tensor, list], Any],
                 weights: Callable[[], tuple],
                 max_graphs: int = MAX_GRAPHS) -> None:
        self.run = run
        self.weights = weights  # a token that changes with the weights
        self.token = None
        self.max_graphs = max_graphs
        self.graphs: Dict[tuple, tuple] = {}
        self.failed: set = set()
        self.pool = None

    def __call__(self, inputs: torch.Tensor, data_samples: list) -> Any:
        token = self.weights()
        if token != self.token:  # graphs read the weights they ran with
            self.graphs.clear()
            self.pool, self.token = None, token
        key = (tuple(inputs.shape), inputs.dtype, str(inputs.device),
               inputs.stride())
        entry = self.graphs.get(key)
        if entry is None:
            if key in self.failed or len(self.graphs) >= self.max_graphs:
                return self.run(inputs, data_samples)
            entry = self._capture(key, inputs, data_samples)
            if entry is None:
                return self.run(inputs, data_samples)
        static_inputs, graph, static_out = entry
        static_inputs.copy_(inputs)
        graph.replay()
        return clone_tensors(static_out)

    def _capture(self, key: tuple, inputs: torch.Tensor,
                 data_samples: list) -> Optional[tuple]:
        static_inputs = inputs.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):  # warm-up: cuDNN picks kernels
                for _ in range(2):
                    self.run(static_inputs, data_samples)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                static_out = self.run(static_inputs, data_samples)
        except Exception as err:  # e.g. a host sync inside the forward
            torch.cuda.synchronize()
            self.failed.add(key)
            warnings.warn(f'model.teacher.cuda_graph: the teacher\'s forward '
                          f'at input shape {key[0]} could not be captured '
                          f'({type(err).__name__}: {err}); it runs eagerly')
            return None
        self.pool = graph.pool()
        self.graphs[key] = (static_inputs, graph, static_out)
        return self.graphs[key]
