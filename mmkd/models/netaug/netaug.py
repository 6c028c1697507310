"""NetAug: train a tiny model inside wider weight-sharing models."""
import math
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn
from torch.func import functional_call

from mmkd.registry import MODELS
from mmkd.utils import rng_kept
from ..base import WrapperModel
from ..distillers.builder import build_model, load_model_config
from ..distillers.single_teacher import (SingleTeacherDistiller,
                                         probe_data_samples)
from .widths import (block, check_widths, concat_layouts, positions, unfit,
                     widened)


def _probe(model: nn.Module, size: int) -> dict:
    """One small eval-mode forward, which fails where widths disagree.

    Returns:
        dict: The model's concatenated channels, as
        :func:`~.widths.concat_layouts` finds them.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), rng_kept():
            return concat_layouts(
                model, lambda: model._forward(
                    torch.rand(1, 3, size, size),
                    probe_data_samples(model, size)))
    finally:
        model.train(was_training)


def _at(index: tuple, device: torch.device) -> tuple:
    """``index`` with its index tensors on ``device`` (slices as they
    are)."""
    return tuple(
        i.to(device) if isinstance(i, Tensor) else i for i in index)


def _outputs(output) -> list:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _outputs(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _outputs(item)]
    return []


def nests(base: nn.Module,
          structure: nn.Module,
          size: int,
          layouts: Optional[dict] = None,
          wide_layouts: Optional[dict] = None) -> bool:
    """Whether ``base`` is the sub-network of ``structure`` in the leading
    channels of every tensor (of every concatenated piece, where
    ``layouts`` and ``wide_layouts`` give them): with the base's
    parameters and statistics there and zeros elsewhere (unit variance),
    the wide model must compute what the base computes. It does not where
    widened channels are normalised in groups, or mixed in a way no
    channel layout describes: there the base's weights would meet other
    channels in the wide model."""
    layouts, wide_layouts = layouts or {}, wide_layouts or {}
    tensors = {}
    own = dict(base.named_parameters())
    own.update(base.named_buffers())
    for name, tensor in list(structure.named_parameters()) + list(
            structure.named_buffers()):
        filled = torch.zeros(tensor.shape, dtype=tensor.dtype)
        if name.endswith('running_var'):
            filled.fill_(1)
        if name in own:
            filled[block(own[name].shape, tensor.shape, layouts.get(name),
                         wide_layouts.get(name))] = own[name].detach().cpu()
        tensors[name] = filled
    was_training = (base.training, structure.training)
    base.eval()
    structure.eval()
    inputs = torch.rand(1, 3, size, size)
    samples = probe_data_samples(base, size)
    with torch.no_grad(), rng_kept():
        expected = _outputs(base._forward(inputs, samples))
        wide = _outputs(
            functional_call(structure, tensors, (inputs, samples)))
    base.train(was_training[0])
    structure.train(was_training[1])
    return len(expected) == len(wide) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)
        for a, b in zip(expected, wide))


@MODELS.register_module()
class NetAug(WrapperModel):
    """Train a tiny detector or segmentor with NetAug.

    `Network Augmentation for Tiny Deep Learning
    <https://arxiv.org/abs/2110.08890>`_ (Cai et al., ICLR 2022) trains the
    tiny (base) model inside wider models that share its weights:
    ``L = L(W_base) + alpha * L([W_base, W_aug])``. At each step one
    augmented width is drawn; the augmented model's leading channels of
    every tensor are the base model's, so its loss trains them too. Only the
    base model is validated and exported.

    The augmented models are the base model's own config with the channel
    counts under ``width_keys`` scaled (:func:`~.widths.widened`): the
    same labels and the same head. The widest one holds the augmented
    weights (:attr:`aug_model`); each narrower width is a structure without
    weights of its own, run with leading slices of the widest tensors
    through :func:`torch.func.functional_call`, with the base's parameters
    in the leading block of every tensor. Where a layer reads a channel
    concatenation (PSPNet's bottleneck reads its input and the pooled
    maps), leading means leading within each concatenated piece
    (:attr:`layouts`, recorded on a probe forward of each width). The base
    model is :attr:`model` itself (or a distiller's ``student``): an
    ordinary mmdet/mmseg model.

    ``model`` may also be a :class:`SingleTeacherDistiller` config: its
    student is then the base model and ``L = L_task + L_distill +
    alpha * L_aug``.

    Departures from the official code (mit-han-lab/tinyml, ``netaug/``),
    which augments MobileNets for classification:

    - It draws a width for every layer from its list, and also augments
      the inverted blocks' expand ratios (sorting their channels by
      importance each epoch). Here one multiplier of ``width_mults`` scales
      every key at once per step, since mmdet/mmseg configs give widths per
      model (a ResNet's ``base_channels``), not per layer; expand ratios
      are not augmented.
    - Its BatchNorm layers share one set of running statistics across
      widths, so it recalibrates the base's on training batches before each
      evaluation. Here the base model keeps its own statistics and the
      augmented models' are kept apart (in :attr:`aug_model`), which is
      what the recalibration restores.
    - It back-propagates the two losses separately before one optimizer
      step; one summed loss gives the same gradients.

    The official width lists for the 0.35 MobileNets are 1.0 (the base),
    1.8 and 2.6, rounded to whole channels; ``alpha`` is 1. It stops
    augmenting widths for the last 75 of its 155 epochs:
    :class:`~mmkd.engine.NetAugHook` does that here.

    Args:
        model (dict | str): The tiny model's config (or a config path), or
            a :class:`SingleTeacherDistiller` config whose student is it.
        width_keys (Sequence[str]): Dotted keys of the tiny model's config
            holding channel counts to augment, e.g.
            ``['backbone.base_channels', 'backbone.stem_channels',
            'decode_head.in_channels']``; the first sets the factor.
        width_mults (Sequence[float]): The augmented widths, as multipliers
            > 1 of the base's. Defaults to (1.8, 2.6).
        alpha (float): Weight of the augmented model's loss. Defaults to 1.
        divisor (int): Round the first key's augmented count to a multiple
            of this. Defaults to 1 (whole channels, as the official code).
        probe_size (int): Side of the probe image that checks each width's
            shapes at build time. Defaults to 64.
        aug_init (str): How the augmented weights start. ``'random'``
            (the official code): from the widest model's own ``init_cfg``.
            ``'preserve'``: the same, then the weights that carry added
            channels into the base's channels are zeroed, so every wide
            model starts computing what the base computes (as Net2Net's
            function-preserving widening), and learns to use its added
            channels from there. Meant for a pretrained base, whose wide
            models would otherwise start as the base plus noise. Defaults
            to ``'random'``.
        data_preprocessor (dict, optional): The wrapped model's, where its
            config does not set one (the Runner passes the config's).
            Defaults to None.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 model: Union[dict, str],
                 width_keys: Sequence[str],
                 width_mults: Sequence[float] = (1.8, 2.6),
                 alpha: float = 1.0,
                 divisor: int = 1,
                 probe_size: int = 64,
                 aug_init: str = 'random',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        keys, mults = check_widths(width_keys, width_mults, divisor)
        if isinstance(alpha, bool) or not isinstance(
                alpha, (int, float)) or not 0 <= alpha < math.inf:
            raise ValueError(f'model.alpha must be a finite number >= 0, got '
                             f'{alpha!r}')
        self.alpha = float(alpha)
        if aug_init not in ('random', 'preserve'):
            raise ValueError("model.aug_init must be 'random' or 'preserve', "
                             f'got {aug_init!r}')
        self.aug_init = aug_init
        if data_preprocessor is not None and isinstance(model, dict):
            # what the Runner passes from the config's top level
            model = dict(model)
            model.setdefault('data_preprocessor', data_preprocessor)
        if isinstance(model, dict) and str(model.get('type', '')).startswith(
                'mmkd.'):
            # a distiller: built as the Runner builds it, in the config's
            # scope, where it builds its student and teacher
            self.model = ROOT_MODELS.build(model)
        else:
            self.model = build_model(model, 'model.model')
        distilled = isinstance(self.model, SingleTeacherDistiller)
        if type(self.model).train_step is not BaseModel.train_step:
            raise TypeError(
                f'model.model: {type(self.model).__name__} runs its own '
                'train_step (e.g. a critic step); NetAug wraps an mmdet/mmseg '
                'model or a SingleTeacherDistiller')
        self.data_preprocessor = self.model.data_preprocessor
        tiny_cfg, scope = load_model_config(
            self.model_cfg(model) if distilled else model, 'model.model')
        tiny_cfg = dict(tiny_cfg)
        if scope is not None:
            tiny_cfg['_scope_'] = scope
        # the augmented models draw from a side stream: the global RNG is
        # where building the tiny model (or its distiller) alone leaves it
        with rng_kept():
            structures = self._build_widths(tiny_cfg, keys, mults, divisor,
                                            probe_size)
        #: the widest augmented model: it holds the augmented weights
        self.aug_model = structures.pop(mults[-1])
        base = dict(self.tiny.named_parameters())
        for name, param in self.aug_model.named_parameters():
            if name in base and base[name].shape == param.shape:
                # not widened (a head's): every width runs the base's own
                # tensor, so this copy is never used, and must not train
                param.requires_grad_(False)
        # the narrower widths run on slices of aug_model's tensors; they
        # hold no weights of their own (meta tensors), and are no
        # submodules: nothing of theirs is saved, moved or optimised
        self._structures = {
            m: s.to('meta')
            for m, s in structures.items()
        }
        self.width_mults = mults
        #: False once :class:`NetAugHook` stops the augmentation
        self.augment = True
        self._blocks: dict = {}  # indices of nested blocks, see _block

    def _build_widths(self, tiny_cfg: dict, keys: list, mults: list,
                      divisor: int, probe_size: int) -> dict:
        """Each augmented model, built and probed, by multiplier."""
        base = dict(self.tiny.named_parameters())
        #: the exact factor of each width (after rounding)
        self.factors: Dict[float, float] = {}
        #: concatenated channels by width (1.0: the base), see
        #: :func:`~.widths.concat_layouts`
        self.layouts: Dict[float, dict] = {1.0: _probe(self.tiny, probe_size)}
        structures = {}
        for mult in mults:
            key = f'model.width_mults ({mult:g})'
            cfg, self.factors[mult] = widened(tiny_cfg, keys, mult, divisor)
            try:
                structure = build_model(cfg, key)
                self.layouts[mult] = _probe(structure, probe_size)
            except (RuntimeError, KeyError, ValueError, AssertionError) as err:
                raise ValueError(
                    f'{key}: the model with {keys} scaled by '
                    f'{self.factors[mult]:g} does not build and run '
                    f'({type(err).__name__}: {err}); width_keys must be '
                    'channel counts, and list every count that follows the '
                    'ones scaled') from err
            bad = unfit(base, dict(structure.named_parameters()),
                        self.layouts[1.0], self.layouts[mult])
            if bad:
                raise ValueError(
                    f'{key}: the base model\'s {bad[:5]} are not leading '
                    'blocks of the augmented model\'s: width_keys must only '
                    'widen channels')
            if not nests(self.tiny, structure, probe_size, self.layouts[1.0],
                         self.layouts[mult]):
                raise ValueError(
                    f'{key}: with {keys} widened, the base model is not the '
                    'leading-channel sub-network of the wide one: a layer '
                    'normalises widened channels in groups (GroupNorm) or '
                    'mixes them in a way other than convolutions, '
                    'BatchNorm, sums and channel concatenations read by a '
                    'convolution or BatchNorm, so the base\'s weights would '
                    'meet other channels there')
            structures[mult] = structure
        return structures

    def init_weights(self) -> None:
        """The wrapped model first, from the global RNG exactly as its own
        training with the same seed initialises it; then the augmented
        weights from a side stream, so that a NetAug run starts from its
        baseline's initialisation."""
        if not getattr(self.model, 'is_init', False):
            self.model.init_weights()
        with rng_kept():
            super().init_weights()
        if self.aug_init == 'preserve':
            self.zero_cross_weights()

    @torch.no_grad()
    def zero_cross_weights(self) -> None:
        """Zero the augmented weights that read added channels into the
        base's channels (rows of the base's output channels, columns of
        the added input channels of every widened weight), so that every
        wide model computes what the base computes (``aug_init=
        'preserve'``)."""
        widest = self.layouts[self.width_mults[-1]]
        base = dict(self.tiny.named_parameters())
        for name, param in self.aug_model.named_parameters():
            own = base.get(name)
            if own is None or param.dim() < 2 or own.shape == param.shape:
                continue
            where = [
                positions(own.shape, param.shape, self.layouts[1.0].get(name),
                          widest.get(name), dim).to(param.device)
                for dim in (0, 1)
            ]
            added = torch.ones(param.shape[1], dtype=torch.bool,
                               device=param.device)
            added[where[1]] = False
            param[where[0][:, None], added.nonzero()[:, 0][None, :]] = 0

    @staticmethod
    def model_cfg(model: Union[dict, str]):
        """The tiny model's config inside a distiller config."""
        cfg, _ = load_model_config(model, 'model.model')
        return cfg['student']

    @property
    def tiny(self) -> nn.Module:
        """The base model: the model itself, or the distiller's student."""
        return getattr(self.model, 'student', self.model)

    def aug_tensors(self, mult: float) -> Dict[str, Tensor]:
        """Parameters and buffers of the augmented model of width ``mult``:
        leading blocks of :attr:`aug_model`'s, with the base's parameters
        in their own leading blocks."""
        structure = self._structures.get(mult, self.aug_model)
        layouts = self.layouts[mult]
        widest = self.layouts[self.width_mults[-1]]
        base_layouts = self.layouts[1.0]
        wide = dict(self.aug_model.named_parameters())
        base = dict(self.tiny.named_parameters())
        tensors = {}
        for name, param in structure.named_parameters():
            tensor = wide[name][self._block(
                (mult, name), param.shape, wide[name], layouts.get(name),
                widest.get(name))]
            own = base.get(name)
            if own is not None:
                if own.shape == tensor.shape:
                    tensor = own
                else:
                    tensor = tensor.clone()
                    tensor[self._block((1.0, mult, name), own.shape, tensor,
                                       base_layouts.get(name),
                                       layouts.get(name))] = own
            tensors[name] = tensor
        wide = dict(self.aug_model.named_buffers())
        for name, buffer in structure.named_buffers():
            tensors[name] = wide[name][self._block(
                (mult, name), buffer.shape, wide[name], layouts.get(name),
                widest.get(name))]
        return tensors

    def _block(self, key: tuple, shape, big: Tensor, layout, big_layout):
        """:func:`~.widths.block` on ``big``'s device, made once per key
        (the training step reuses it)."""
        key = (*key, big.device)
        index = self._blocks.get(key)
        if index is None:
            index = self._blocks[key] = _at(
                block(shape, big.shape, layout, big_layout), big.device)
        return index

    def sample_width(self) -> float:
        """One of ``width_mults``, uniformly, from torch's global generator
        (so seeded runs and exact resumes draw the same widths)."""
        return self.width_mults[int(
            torch.randint(len(self.width_mults), ()))]

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """The model's losses plus ``aug.<loss>``: ``alpha`` times the
        augmented model's, for one width drawn per step."""
        losses = self.model.loss(inputs, data_samples)
        if not self.augment:
            # zero that still reaches every augmented weight, for DDP
            losses['aug.loss'] = sum(
                (p.sum() * 0 for p in self.aug_model.parameters()),
                inputs.new_zeros(()))
            return losses
        mult = self.sample_width()
        structure = self._structures.get(mult, self.aug_model)
        aug = functional_call(structure, self.aug_tensors(mult),
                              (inputs, data_samples), dict(mode='loss'))
        for name, value in aug.items():
            if 'loss' in name:
                value = ([v * self.alpha for v in value] if isinstance(
                    value, (list, tuple)) else value * self.alpha)
            losses[f'aug.{name}'] = value
        return losses

    def parse_losses(self, losses: Dict[str, Tensor]):
        """The wrapped model's parsing (a distiller adds its terms)."""
        return self.model.parse_losses(losses)

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """The base model's predictions (through a distiller: its
        student's)."""
        return self.model.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        return self.model._forward(inputs, data_samples)

    @property
    def wrapped(self) -> nn.Module:
        """The model NetAug trains (a distiller, for the hooks that drive
        one; see :func:`~mmkd.models.distillers.single_teacher.distiller_of`
        )."""
        return self.model
