"""Structured knowledge distillation for segmentation: pixel-wise, pair-wise
and holistic terms, the critic trained by its own optimizer."""
import inspect
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from mmkd.registry import MODELS
from ..adapters.conv_adapter import resize_like
from ..losses import HolisticKDLoss, TeKAP, critic_loss
from .single_teacher import SingleTeacherDistiller
from .taps import levels_of


def bare(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper, or the module itself."""
    return module.module if is_model_wrapper(module) else module


def takes_gt(loss: nn.Module) -> bool:
    """Whether a loss (or the loss a :class:`TeKAP` wraps) takes ``gt``."""
    while isinstance(loss, TeKAP):
        loss = loss.loss
    return 'gt' in inspect.signature(loss.forward).parameters


def check_critic_args(critic_steps: int, gp_weight: float,
                      critic_loss_weight: float,
                      mask_critic_input: bool) -> None:
    """Raise a ValueError naming the first bad critic setting."""
    if type(critic_steps) is not int or critic_steps < 1:
        raise ValueError('model.critic_steps must be an int >= 1, got '
                         f'{critic_steps!r}')
    if not gp_weight >= 0:
        raise ValueError(f'model.gp_weight must be >= 0, got {gp_weight!r}')
    number = not isinstance(critic_loss_weight, bool) and isinstance(
        critic_loss_weight, (int, float))
    if not number or critic_loss_weight <= 0:
        raise ValueError(
            'model.critic_loss_weight must be a number > 0 (the official '
            f'lambda_d is 0.1), got {critic_loss_weight!r}')
    if not isinstance(mask_critic_input, bool):
        raise ValueError('model.mask_critic_input must be True or False, '
                         f'got {mask_critic_input!r}')


class AdapterDict(nn.ModuleDict):
    """Adapters by loss name, applied in one call (one DDP forward)."""

    def forward(self, feats: Dict[str, List[Tensor]]) -> Dict[str, list]:
        """Adapt the levels of every name that has an adapter."""
        return {n: self[n](f) if n in self else f for n, f in feats.items()}


@MODELS.register_module()
class StructuredDistiller(SingleTeacherDistiller):
    """Distil an mmseg segmentor with pixel-wise, pair-wise and holistic
    (adversarial) terms; a WGAN-GP critic is trained beside the student.

    `Structured Knowledge Distillation for Semantic Segmentation
    <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019; TPAMI 2020
    as "Structured Knowledge Distillation for Dense Prediction"; official
    code irfanICMLL/structure_knowledge_distillation). ``losses`` work as in
    :class:`SingleTeacherDistiller`, with segmentation-specific inputs:

    - a loss whose ``forward`` takes ``gt`` (:class:`PixelWiseKDLoss`, also
      inside :class:`TeKAP`) gets the batch's label map, whose
      ``ignore_index`` pixels (the data preprocessor pads with them too)
      are left out;
    - the :class:`HolisticKDLoss` entry gets its student tap's map and the
      critic (and the image, when the critic has ``in_image_channels``);
      the teacher tap's map is the critic's "real" sample. The maps are the
      raw logits for a critic with ``input_type='logits'`` (the official
      setup: the critic's own BatchNorm normalises them) and their softmax
      for ``input_type='probs'``; whole, as officially, unless
      ``mask_critic_input``;
    - for every other loss, student and teacher maps are zeroed at ignored
      pixels (mask resized by nearest neighbour), so those positions
      contribute nothing.

    Student maps are resized (bilinear) to the teacher's size. Class maps
    (losses taking ``gt``, the holistic entry) must have as many channels
    on both sides: a class-count mismatch fails at build time.

    ``train_step`` alternates: one student step (student and adapters,
    optimizer ``student``) on the task and distillation losses, then
    ``critic_steps`` critic steps (optimizer ``critic``) with
    :func:`critic_loss` times ``critic_loss_weight`` on the same batch's
    detached maps, as the official ``NetModel.optimize_parameters``. The
    config's ``optim_wrapper`` must build both (see
    :class:`~mmkd.engine.DistillerOptimWrapperConstructor`); the official
    critic optimizer is SGD (lr 4e-4, momentum 0.9, weight decay 5e-4) with
    its own poly decay to 0, ``configs/_base_/methods/skd.py``. Under DDP use
    ``model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')``.

    Remaining departures from the official code (effects not measured):
    the pixel-wise ``'mean'`` reduction with ``loss_weight=80`` (see
    :class:`PixelWiseKDLoss`) and the critic's last layer and spectral norm
    (see :class:`HolisticCritic`); the critic's BatchNorm takes statistics
    per GPU (the official runs use one GPU); the student's own schedule is
    its config's (mmseg's Cityscapes students: 80k iterations, 4x2 images,
    PolyLR to 1e-4; officially 40k iterations of 8 images, poly to 0).

    Args:
        student (dict | str): The student segmentor's config.
        teacher (dict): ``dict(config=..., checkpoint=..., strict=True)``.
        losses (dict): ``{name: loss_cfg}`` with ``student``/``teacher``
            taps, as in :class:`SingleTeacherDistiller`.
        critic (dict, optional): Config of the critic, e.g.
            ``dict(type='mmkd.HolisticCritic', num_classes=19)``; without
            ``num_classes`` it is the holistic tap's channel count. Needed
            exactly when ``losses`` has a :class:`HolisticKDLoss`.
            Defaults to None.
        critic_steps (int): Critic updates per student update. Defaults
            to 1.
        gp_weight (float): Weight ``lambda_gp`` of the gradient penalty.
            Defaults to 10.0.
        critic_loss_weight (float): Factor ``lambda_d`` on the critic's whole
            loss, penalty included (official ``discriminator_backward``).
            With SGD it scales the critic's gradient but not its weight
            decay. Defaults to 0.1.
        mask_critic_input (bool): Zero the critic's maps (both sides, and
            the student's holistic term) at ``ignore_index`` pixels. The
            official critic sees whole maps. Defaults to False.
        probe_size (int): Side of the build-time probe image. Defaults
            to 128.
        data_preprocessor (dict, optional): The student's data preprocessor
            if its model dict has none. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Example:
        >>> seg = dict(type='mmseg.EncoderDecoder',
        ...     data_preprocessor=dict(type='mmseg.SegDataPreProcessor'),
        ...     backbone=dict(type='mmseg.MobileNetV2', widen_factor=0.25,
        ...                   out_indices=(4, 6)),
        ...     decode_head=dict(type='mmseg.FCNHead', in_channels=80,
        ...                      channels=8, num_classes=3, num_convs=1,
        ...                      concat_input=False))
        >>> logits = 'decode_head.conv_seg'
        >>> distiller = StructuredDistiller(
        ...     student=seg, teacher=dict(config=seg, checkpoint=None),
        ...     losses=dict(
        ...         pixel=dict(type='PixelWiseKDLoss', loss_weight=10.,
        ...                    student=logits, teacher=logits),
        ...         holistic=dict(type='HolisticKDLoss', student=logits,
        ...                       teacher=logits)),
        ...     critic=dict(type='HolisticCritic', num_classes=3,
        ...                 base_channels=8))
        >>> distiller.separately_optimized
        ('critic',)
    """

    def __init__(self,
                 student: Union[dict, str],
                 teacher: dict,
                 losses: Dict[str, dict],
                 critic: Optional[dict] = None,
                 critic_steps: int = 1,
                 gp_weight: float = 10.0,
                 critic_loss_weight: float = 0.1,
                 mask_critic_input: bool = False,
                 probe_size: int = 128,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        check_critic_args(critic_steps, gp_weight, critic_loss_weight,
                          mask_critic_input)
        super().__init__(
            student=student,
            teacher=teacher,
            losses=losses,
            probe_size=probe_size,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        for name, spec in self.loss_specs.items():
            if getattr(spec, 'inputs', None):
                raise ValueError(
                    f'model.losses.{name}.inputs: StructuredDistiller passes '
                    'no further inputs but the label map (as gt)')
        self.critic_steps, self.gp_weight = critic_steps, gp_weight
        self.critic_loss_weight = critic_loss_weight
        self.mask_critic_input = mask_critic_input
        decode_head = getattr(self.student, 'decode_head', None)
        self.ignore_index = getattr(decode_head, 'ignore_index', 255)
        self.critic = self._build_critic(critic)
        self._critic_batch = None

    @property
    def separately_optimized(self) -> tuple:
        """Children trained by their own optimizer (``optim_wrapper.X``)."""
        return ('critic', ) if self.critic is not None else ()

    def _build_critic(self, cfg: Optional[dict]) -> Optional[nn.Module]:
        holistic = [
            n for n, loss in self.distill_losses.items()
            if isinstance(loss, HolisticKDLoss)
        ]
        if cfg is None:
            if holistic:
                raise KeyError(
                    f'model.losses.{holistic[0]} is a HolisticKDLoss, which '
                    "needs model.critic=dict(type='mmkd.HolisticCritic', "
                    'num_classes=...); model.critic is None')
            return None
        if len(holistic) != 1:
            raise ValueError(
                'model.critic is set, so model.losses needs exactly one '
                f'HolisticKDLoss entry to train against it; found {holistic}')
        tap = self.loss_specs[holistic[0]].student
        channels = self.__dict__['_probe_shapes']['student'][tap][0][1]
        if 'num_classes' not in cfg or cfg['num_classes'] is None:
            # the critic sees the logits tap (or its softmax): size it there
            cfg = dict(cfg, num_classes=channels)
        with DefaultScope.overwrite_default_scope('mmkd'):
            critic = MODELS.build(cfg)
        classes = getattr(critic, 'num_classes', channels)
        if classes != channels:
            raise ValueError(
                f'model.critic.num_classes is {classes} but the tap of '
                f'model.losses.{holistic[0]} gives {channels} classes; '
                f'set num_classes={channels}')
        return critic

    def _probe(self, model: nn.Module, taps, size: int) -> dict:
        """The base probe, remembering every tap's shapes for checks."""
        records = super()._probe(model, taps, size)
        shapes = {n: [f.shape for f in lv] for n, lv in records.items()}
        side = 'student' if model is self.student else 'teacher'
        self.__dict__.setdefault('_probe_shapes', {})[side] = shapes
        return records

    def _build_adapters(self, probe_size: int) -> AdapterDict:
        adapters = AdapterDict(super()._build_adapters(probe_size))
        shapes = self.__dict__['_probe_shapes']
        for name, spec in self.loss_specs.items():
            key = f'model.losses.{name}'
            levels_s = shapes['student'][spec.student]
            levels_t = shapes['teacher'][spec.teacher]
            class_maps = takes_gt(self.distill_losses[name]) or isinstance(
                self.distill_losses[name], HolisticKDLoss)
            for s, t in zip(levels_s, levels_t):
                if s[2:] != t[2:] and (len(s) != 4 or len(t) != 4):
                    raise ValueError(
                        f'{key}: student tap {spec.student!r} gives '
                        f'{tuple(s)} and teacher tap {spec.teacher!r} gives '
                        f'{tuple(t)}; only (N, C, H, W) maps can be resized '
                        'to one size: tap spatial maps on both sides')
                if class_maps and s[1] != t[1]:
                    raise ValueError(
                        f'{key}: student tap {spec.student!r} gives {s[1]} '
                        f'classes and teacher tap {spec.teacher!r} gives '
                        f'{t[1]}; {type(self.distill_losses[name]).__name__}'
                        ' compares class maps: student and teacher need the '
                        'same classes (decode_head.num_classes)')
        return adapters

    def _valid_mask(self, data_samples: Sequence) -> Optional[Tensor]:
        """``(N, 1, H, W)`` labels of the padded batch, or None."""
        if not data_samples or not all('gt_sem_seg' in ds
                                       for ds in data_samples):
            return None
        return torch.stack([ds.gt_sem_seg.data for ds in data_samples])

    def _masked(self, feat: Tensor, gt: Optional[Tensor]) -> Tensor:
        """``feat`` zeroed where ``gt`` is ``ignore_index``."""
        if gt is None or feat.dim() != 4:
            return feat
        valid = (gt != self.ignore_index).to(feat.dtype)
        return feat * F.interpolate(valid, size=feat.shape[-2:])

    def _term(self, name: str, feats_s: List[Tensor], feats_t: List[Tensor],
              gt: Optional[Tensor], inputs: Tensor) -> Tensor:
        """One distillation loss on resized student and teacher levels."""
        loss = self.distill_losses[name]
        if isinstance(loss, HolisticKDLoss):
            return self._holistic(loss, feats_s[0], feats_t[0], gt, inputs)
        kwargs = {}
        if takes_gt(loss):
            kwargs = {} if gt is None else dict(gt=gt)
        else:
            feats_s = [self._masked(f, gt) for f in feats_s]
            feats_t = [self._masked(f, gt) for f in feats_t]
        one = len(feats_s) == 1
        return loss(feats_s[0] if one else feats_s,
                    feats_t[0] if one else feats_t, **kwargs)

    def _holistic(self, loss: HolisticKDLoss, logits_s: Tensor,
                  logits_t: Tensor, gt: Optional[Tensor],
                  inputs: Tensor) -> Tensor:
        """The student's holistic term; keeps the critic's batch."""
        critic = bare(self.critic)
        maps_s, maps_t = logits_s, logits_t
        if getattr(critic, 'input_type', 'logits') == 'probs':
            maps_s, maps_t = maps_s.softmax(dim=1), maps_t.softmax(dim=1)
        if self.mask_critic_input:
            maps_s, maps_t = self._masked(maps_s, gt), self._masked(maps_t, gt)
        images = inputs if getattr(critic, 'in_image_channels', 0) else None
        self._critic_batch = (maps_s.detach(), maps_t.detach(), images)
        return loss(maps_s, critic, images)

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """The student's losses plus ``distill.<name>`` for each loss."""
        active = [n for n, w in self.loss_multipliers.items() if w > 0]
        records_t = (
            self._teacher_records(inputs, data_samples) if active else {})
        with self.student_taps.recording():
            # through the (DDP) wrapper's forward, so gradients are synced
            losses = self.student(inputs, data_samples, mode='loss')
            records_s = self.student_taps.collect()
        adapted = self.adapters({
            name: levels_of(records_s[spec.student])
            for name, spec in self.loss_specs.items()
        })
        gt = self._valid_mask(data_samples)
        self._critic_batch = None
        for name, spec in self.loss_specs.items():
            if name not in active:
                # a zero that still reaches the adapter, for DDP
                losses[f'distill.{name}'] = sum(f.sum() * 0
                                                for f in adapted[name])
                continue
            feats_t = levels_of(records_t[spec.teacher])
            feats_s = resize_like(adapted[name], feats_t)
            value = self._term(name, feats_s, feats_t, gt, inputs)
            multiplier = self.loss_multipliers[name]
            losses[f'distill.{name}'] = (
                value if multiplier == 1.0 else value * multiplier)
        return losses

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """A student step, then ``critic_steps`` critic steps."""
        if self.critic is None:
            if isinstance(optim_wrapper, OptimWrapperDict):
                optim_wrapper = optim_wrapper['student']
            return super().train_step(data, optim_wrapper)
        if not isinstance(optim_wrapper, OptimWrapperDict) or not {
                'student', 'critic'
        } <= set(optim_wrapper.keys()):
            raise TypeError(
                'model.critic needs its own optimizer: set optim_wrapper='
                "dict(constructor='mmkd.DistillerOptimWrapperConstructor', "
                "student=dict(...), critic=dict(optimizer=dict(type='SGD', "
                'lr=4e-4, momentum=0.9, weight_decay=5e-4))); got '
                f'{type(optim_wrapper).__name__}')
        student = optim_wrapper['student']
        with student.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed, log_vars = self.parse_losses(losses)
        student.update_params(parsed)
        log_vars.update(self.train_critic(optim_wrapper['critic']))
        return log_vars

    def train_critic(self, optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Update the critic on the maps of the last :meth:`loss` call."""
        if self._critic_batch is None:  # the holistic term is switched off
            return {}
        maps_s, maps_t, images = self._critic_batch
        self._critic_batch = None
        for _ in range(self.critic_steps):
            with optim_wrapper.optim_context(self.critic):
                loss = critic_loss(self.critic, maps_s, maps_t, images,
                                   self.gp_weight, self.critic_loss_weight)
            optim_wrapper.update_params(loss)
        return {'critic.loss': loss.detach()}

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """The student's predictions."""
        return bare(self.student).predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """The student's raw outputs."""
        return bare(self.student)._forward(inputs, data_samples)
