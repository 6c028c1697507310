"""Structured knowledge distillation for segmentation: pixel-wise, pair-wise
and holistic terms, the critic trained by its own optimizer."""
from typing import Dict, Optional, Union

from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from mmkd.registry import MODELS
from mmkd.utils import rng_kept
from ..losses import HolisticKDLoss, critic_loss
from .single_teacher import SingleTeacherDistiller


def check_critic_args(critic_steps: int, gp_weight: float,
                      critic_loss_weight: float) -> None:
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


@MODELS.register_module()
class StructuredDistiller(SingleTeacherDistiller):
    """Distil an mmseg segmentor with pixel-wise, pair-wise and holistic
    (adversarial) terms; a WGAN-GP critic is trained beside the student.

    `Structured Knowledge Distillation for Semantic Segmentation
    <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019; TPAMI 2020
    as "Structured Knowledge Distillation for Dense Prediction"; official
    code irfanICMLL/structure_knowledge_distillation). Losses, taps and
    inputs work exactly as in :class:`SingleTeacherDistiller`; what this
    class adds is the critic:

    - it is built from ``critic`` and bound to the one
      :class:`HolisticKDLoss` entry, which scores the student's maps with it
      and keeps both sides' maps for the critic's next step. A critic with
      ``in_image_channels`` needs the entry's
      ``inputs=dict(images='batch.inputs')``;
    - ``train_step`` alternates: one student step (student and adapters,
      optimizer ``student``) on the task and distillation losses, then
      ``critic_steps`` critic steps (optimizer ``critic``) with
      :func:`critic_loss` times ``critic_loss_weight`` on the same batch's
      detached maps, as the official ``NetModel.optimize_parameters``.

    The config's ``optim_wrapper`` must build both optimizers (see
    :class:`~mmkd.engine.DistillerOptimWrapperConstructor`); the official
    critic optimizer is SGD (lr 4e-4, momentum 0.9, weight decay 5e-4) with
    its own poly decay to 0, ``configs/_base_/methods/skd.py``, whose loss
    entries also show the segmentation inputs: the pixel-wise term's
    ``gt='batch.gt_sem_seg'`` and the valid-pixel mask
    ``'batch.valid_mask'``. Under DDP, student and critic are wrapped and
    synced separately (``separate_ddp``; see
    :class:`~mmkd.engine.DistillerDataParallel`).

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
        losses (dict): ``{name: loss_cfg}`` as in
            :class:`SingleTeacherDistiller`.
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
        pairings (dict, optional): As in :class:`SingleTeacherDistiller`.
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
        ...                    student=logits, teacher=logits,
        ...                    inputs=dict(gt='batch.gt_sem_seg')),
        ...         holistic=dict(type='HolisticKDLoss', student=logits,
        ...                       teacher=logits)),
        ...     critic=dict(type='HolisticCritic', num_classes=3,
        ...                 base_channels=8))
        >>> distiller.separately_optimized
        ('critic',)
    """

    #: two optimizers step in train_step: DDP wraps each child on its own
    separate_ddp = True

    def __init__(self,
                 student: Union[dict, str],
                 teacher: dict,
                 losses: Dict[str, dict],
                 critic: Optional[dict] = None,
                 critic_steps: int = 1,
                 gp_weight: float = 10.0,
                 critic_loss_weight: float = 0.1,
                 pairings: Optional[Dict[str, dict]] = None,
                 probe_size: int = 128,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 mask_critic_input=None) -> None:
        if mask_critic_input is not None:
            raise ValueError(
                'model.mask_critic_input is gone: give the HolisticKDLoss '
                "entry inputs=dict(valid_mask='batch.valid_mask') to zero "
                "the critic's maps at ignored pixels")
        check_critic_args(critic_steps, gp_weight, critic_loss_weight)
        super().__init__(
            student=student,
            teacher=teacher,
            losses=losses,
            pairings=pairings,
            probe_size=probe_size,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.critic_steps, self.gp_weight = critic_steps, gp_weight
        self.critic_loss_weight = critic_loss_weight
        with rng_kept():  # off the student's stream, like the parts
            self.critic = self._build_critic(critic)

    @property
    def separately_optimized(self) -> tuple:
        """Children trained by their own optimizer (``optim_wrapper.X``)."""
        return ('critic', ) if self.critic is not None else ()

    def _holistic(self) -> Optional[HolisticKDLoss]:
        """The :class:`HolisticKDLoss` entry, if any."""
        found = [
            loss for loss in self.distill_losses.values()
            if isinstance(loss, HolisticKDLoss)
        ]
        return found[0] if found else None

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
        name, spec = holistic[0], self.loss_specs[holistic[0]]
        shapes = self.tap_shapes['student'].get(spec.student)
        if shapes is None:
            raise ValueError(
                f'model.losses.{name}.student: the holistic term reads the '
                f'logits of a tapped module, got {spec.student!r}')
        channels = shapes[0][1]
        if 'num_classes' not in cfg or cfg['num_classes'] is None:
            # the critic sees the logits tap (or its softmax): size it there
            cfg = dict(cfg, num_classes=channels)
        with DefaultScope.overwrite_default_scope('mmkd'):
            critic = MODELS.build(cfg)
        classes = getattr(critic, 'num_classes', channels)
        if classes != channels:
            raise ValueError(
                f'model.critic.num_classes is {classes} but the tap of '
                f'model.losses.{name} gives {channels} classes; '
                f'set num_classes={channels}')
        if getattr(critic, 'in_image_channels', 0) and (
                'images' not in spec.inputs):
            raise ValueError(
                'model.critic reads images (in_image_channels='
                f'{critic.in_image_channels}): set model.losses.{name}.'
                "inputs=dict(images='batch.inputs')")
        self.distill_losses[name].bind(critic)
        return critic

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
        self._holistic().critic_batch = None
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
        holistic = self._holistic()
        if holistic is None or holistic.critic_batch is None:
            return {}  # the holistic term is switched off
        maps_s, maps_t, images = holistic.critic_batch
        holistic.critic_batch = None
        # maps of an --amp student step are fp16; the critic trains in fp32
        maps_s, maps_t = maps_s.float(), maps_t.float()
        images = None if images is None else images.float()
        for _ in range(self.critic_steps):
            with optim_wrapper.optim_context(self.critic):
                # through a DDP wrapper's forward: gradients are synced
                loss = critic_loss(self.critic, maps_s, maps_t, images,
                                   self.gp_weight, self.critic_loss_weight)
            optim_wrapper.update_params(loss)
        return {'critic.loss': loss.detach()}
