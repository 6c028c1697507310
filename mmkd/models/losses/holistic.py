"""Holistic (adversarial) distillation of segmentation maps (structured KD;
Liu et al., CVPR 2019 / TPAMI 2020): a WGAN-GP critic and its two losses."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import spectral_norm

from mmkd.registry import MODELS
from .pair_wise import masked

#: Four stride-2 convolutions halve a side four times; it must stay >= 1.
MIN_MAP_SIZE = 16


class SelfAttention(nn.Module):
    """Self-attention over the spatial positions of a feature map, added
    back through a learned gate that starts at 0.

    ``out = gamma * v softmax(q^T k)^T + x`` with 1x1-conv projections, the
    block of `Self-Attention Generative Adversarial Networks
    <https://arxiv.org/abs/1805.08318>`_ (Zhang et al., ICML 2019) that the
    official structured-KD discriminator uses.

    Args:
        channels (int): Channels of the input map.

    Example:
        >>> import torch
        >>> x = torch.randn(1, 16, 4, 4)
        >>> torch.equal(SelfAttention(16)(x), x)  # gamma starts at 0
        True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.query = nn.Conv2d(channels, inner, kernel_size=1)
        self.key = nn.Conv2d(channels, inner, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x`` plus the gated attention output."""
        query = self.query(x).flatten(2)  # (N, C', M)
        key = self.key(x).flatten(2)  # (N, C', M)
        value = self.value(x).flatten(2)  # (N, C, M)
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)
        out = (value @ attention.transpose(1, 2)).view_as(x)
        return self.gamma * out + x


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    """Spectral-norm 4x4 stride-2 convolution and LeakyReLU(0.1)."""
    conv = nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1)
    return nn.Sequential(spectral_norm(conv), nn.LeakyReLU(0.1))


#: What the critic reads: raw logits through a trainable BatchNorm (the
#: official code) or softmax probabilities (the paper's ``Q``).
INPUT_TYPES = ('logits', 'probs')


@MODELS.register_module()
class HolisticCritic(nn.Module):
    """WGAN-GP critic that scores a segmentation map, optionally
    conditioned on the image, with one number per sample.

    The discriminator of `Structured Knowledge Distillation for Semantic
    Segmentation <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019;
    TPAMI 2020 as "Structured Knowledge Distillation for Dense Prediction"),
    after the official ``networks/sagan_models.py`` (``Discriminator``):
    four spectral-norm 4x4 stride-2 convolutions (``b, 2b, 4b, 8b`` channels,
    LeakyReLU 0.1) with self-attention after the third and the fourth, then
    a plain convolution to one channel.

    ``input_type='logits'`` (the official default, ``preprocess_GAN_mode=1``)
    takes the raw class logits and normalises them with a trainable
    ``BatchNorm2d(num_classes)`` first; in training mode it uses the
    statistics of each call's batch, so the teacher's, the student's and the
    interpolated maps are each normalised on their own, as officially.
    ``input_type='probs'`` takes softmax probabilities with no
    preprocessing; with ``in_image_channels=3`` it is the image-conditioned
    critic of the paper's text (the image resized bilinearly to the map and
    concatenated on channels), which the official code does not use.

    Departures from the official code: the last layer is a 3x3 "same"
    convolution averaged over positions instead of a 4x4 valid one sized for
    65x65 maps, so any map of at least 16x16 gets one score; spectral norm is
    torch's (its power iteration stops in eval mode, the official one runs on
    every forward).

    Args:
        num_classes (int): Channels of the class maps.
        input_type (str): ``'logits'`` or ``'probs'`` (see above). Defaults
            to ``'logits'``.
        in_image_channels (int): Channels of the image to concatenate, 0 for
            none. Defaults to 0.
        base_channels (int): Width ``b`` of the first convolution.
            Defaults to 64.

    Example:
        >>> import torch
        >>> critic = HolisticCritic(3, base_channels=8)
        >>> logits = torch.randn(2, 3, 16, 16)
        >>> critic(logits).shape
        torch.Size([2])
        >>> norm = critic.preprocess  # BatchNorm2d on batch statistics
        >>> torch.allclose(norm(logits), norm(3 * logits + 1), atol=1e-4)
        True
    """

    def __init__(self,
                 num_classes: int,
                 input_type: str = 'logits',
                 in_image_channels: int = 0,
                 base_channels: int = 64) -> None:
        super().__init__()
        minimums = dict(
            num_classes=(num_classes, 1),
            in_image_channels=(in_image_channels, 0),
            base_channels=(base_channels, 1))
        for key, (value, low) in minimums.items():
            if not isinstance(value, int) or value < low:
                raise ValueError(
                    f'{key} must be an int >= {low}, got {key}={value!r}')
        if input_type not in INPUT_TYPES:
            raise ValueError(f'input_type must be one of {INPUT_TYPES}, got '
                             f'input_type={input_type!r}')
        self.num_classes = num_classes
        self.input_type = input_type
        self.in_image_channels = in_image_channels
        self.preprocess = (
            nn.BatchNorm2d(num_classes)
            if input_type == 'logits' else nn.Identity())
        b = base_channels
        self.features = nn.Sequential(
            _down(num_classes + in_image_channels, b), _down(b, 2 * b),
            _down(2 * b, 4 * b), SelfAttention(4 * b), _down(4 * b, 8 * b),
            SelfAttention(8 * b))
        self.score = nn.Conv2d(8 * b, 1, kernel_size=3, padding=1)

    def forward(self, maps: Tensor, images: Optional[Tensor] = None) -> Tensor:
        """Score ``(N, num_classes, H, W)`` maps; return shape ``(N,)``."""
        self._check(maps, images)
        x = self.preprocess(maps)
        if self.in_image_channels:
            images = F.interpolate(
                images.to(maps.dtype),
                size=maps.shape[-2:],
                mode='bilinear',
                align_corners=False)
            x = torch.cat([x, images], dim=1)
        return self.score(self.features(x)).mean(dim=(1, 2, 3))

    def _check(self, maps: Tensor, images: Optional[Tensor]) -> None:
        """Raise a ValueError naming the shapes of bad inputs."""
        if maps.dim() != 4 or maps.shape[1] != self.num_classes:
            raise ValueError(
                f'HolisticCritic(num_classes={self.num_classes}) needs '
                f'(N, {self.num_classes}, H, W) maps, got '
                f'{tuple(maps.shape)}')
        if min(maps.shape[-2:]) < MIN_MAP_SIZE:
            raise ValueError(
                f'HolisticCritic needs maps of at least {MIN_MAP_SIZE}x'
                f'{MIN_MAP_SIZE}, got {tuple(maps.shape[-2:])}: upsample '
                'the maps first')
        if not self.in_image_channels:
            if images is not None:
                raise ValueError(
                    'images given to a HolisticCritic built with '
                    'in_image_channels=0: set in_image_channels=3')
            return
        expected = (maps.shape[0], self.in_image_channels)
        if images is None or images.dim() != 4 or images.shape[:2] != expected:
            got = None if images is None else tuple(images.shape)
            raise ValueError(
                f'HolisticCritic(in_image_channels={self.in_image_channels})'
                f' needs images of shape ({expected[0]}, {expected[1]}, H, W)'
                f' for maps {tuple(maps.shape)}, got {got}')


def _score(critic: nn.Module, maps: Tensor,
           images: Optional[Tensor]) -> Tensor:
    """``critic(maps)`` or ``critic(maps, images)``."""
    return critic(maps) if images is None else critic(maps, images)


def gradient_penalty(critic: nn.Module,
                     maps_s: Tensor,
                     maps_t: Tensor,
                     images: Optional[Tensor] = None) -> Tensor:
    """WGAN-GP penalty ``mean_n (||grad_x D(x_n)||_2 - 1)^2`` on random
    interpolates ``x = alpha M_t + (1 - alpha) M_s`` of the critic's inputs.

    ``alpha ~ U(0, 1)`` is drawn per sample as ``torch.rand(N, 1, 1, 1)``
    (as the official ``CriterionAdditionalGP``); both maps are detached and
    the gradient is taken with respect to the maps only (the image is a
    fixed condition). The graph is kept so that the penalty trains the
    critic. `Improved Training of Wasserstein GANs
    <https://arxiv.org/abs/1704.00028>`_ (Gulrajani et al., NeurIPS 2017).

    Example:
        >>> import torch
        >>> critic = lambda x: 2 * x.flatten(1).sum(1)  # gradient norm 2
        >>> maps = torch.rand(3, 1, 1, 1)
        >>> float(gradient_penalty(critic, maps, maps))
        1.0
    """
    real, fake = maps_t.detach(), maps_s.detach()
    alpha = torch.rand(
        real.shape[0], 1, 1, 1, dtype=real.dtype, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = _score(critic, mixed, images)
    grad, = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return ((norm - 1)**2).mean()


def critic_loss(critic: nn.Module,
                maps_s: Tensor,
                maps_t: Tensor,
                images: Optional[Tensor] = None,
                gp_weight: float = 10.0,
                loss_weight: float = 1.0) -> Tensor:
    """The critic's WGAN-GP loss
    ``loss_weight * (E[D(M_s)] - E[D(M_t)] + gp_weight * GP)``.

    The teacher's maps are the "real" samples, the student's the "fake"
    ones; ``M`` is what the critic reads (logits or probabilities). Both
    (and the images) are detached, so only the critic gets gradients; step
    it with its own optimizer. ``gp_weight`` is the paper's
    ``lambda_gp = 10``; the official ``discriminator_backward`` scales the
    whole loss, penalty included, by ``lambda_d = 0.1`` (``loss_weight``;
    :class:`StructuredDistiller` passes its ``critic_loss_weight``). See
    :func:`gradient_penalty`.

    Example:
        >>> import torch
        >>> critic = HolisticCritic(num_classes=2, base_channels=4)
        >>> logits_s = torch.randn(2, 2, 16, 16)
        >>> logits_t = torch.randn(2, 2, 16, 16)
        >>> critic_loss(critic, logits_s, logits_t, loss_weight=0.1).backward()
        >>> critic.score.weight.grad is not None
        True
    """
    if maps_s.shape != maps_t.shape:
        raise ValueError(
            'critic_loss needs student and teacher maps of the same shape, '
            f'got student {tuple(maps_s.shape)} and teacher '
            f'{tuple(maps_t.shape)}')
    if images is not None:
        images = images.detach()
    loss = (
        _score(critic, maps_s.detach(), images).mean() -
        _score(critic, maps_t.detach(), images).mean())
    if gp_weight:
        loss = loss + gp_weight * gradient_penalty(critic, maps_s, maps_t,
                                                   images)
    return loss_weight * loss


@MODELS.register_module()
class HolisticKDLoss(nn.Module):
    """The student's adversarial term ``-loss_weight * E[D(M_s)]``.

    The holistic term of `Structured Knowledge Distillation for Semantic
    Segmentation <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019;
    TPAMI 2020 as "Structured Knowledge Distillation for Dense Prediction"),
    ``lambda_d = 0.1`` (official ``CriterionAdvForG`` times ``lambda_d``).
    ``M_s`` is the student's map in the form the critic reads: raw logits
    for the official ``input_type='logits'`` critic, which normalises them
    with its own BatchNorm exactly as it does the teacher's, and their
    softmax for ``input_type='probs'``. The student's maps are *not*
    detached: the gradient flows through the critic into the student. The
    critic is run with detached copies of its parameters, so its parameters
    receive no gradient from this term (its buffers, e.g. BatchNorm
    statistics and spectral-norm power iterations, update as in any
    forward).

    The critic is bound with :meth:`bind` (by :class:`StructuredDistiller`,
    which also trains it); it is no submodule of the loss. Each call keeps
    the detached maps of both sides (and the images) as
    :attr:`critic_batch`, the batch of the critic's next step
    (:func:`critic_loss`).

    Args:
        loss_weight (float): Weight ``lambda_d`` of the loss. Defaults
            to 0.1.

    Example:
        >>> import torch
        >>> critic = HolisticCritic(num_classes=3, base_channels=8)
        >>> loss = HolisticKDLoss()
        >>> loss.bind(critic)
        >>> logits_s = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> loss(logits_s, torch.randn(2, 3, 16, 16)).backward()
        >>> logits_s.grad is not None, critic.score.weight.grad is None
        (True, True)
    """

    #: student and teacher maps are class maps: no adapter, equal classes
    compares_distributions = True

    def __init__(self, loss_weight: float = 0.1) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._critic = (None, )  # a tuple: the critic is no submodule
        self.critic_batch = None

    @property
    def critic(self) -> Optional[nn.Module]:
        """The bound critic (the bare module, not a DDP wrapper)."""
        return self._critic[0]

    def bind(self, critic: nn.Module) -> None:
        """Score maps with ``critic`` from now on."""
        self._critic = (critic, )

    def forward(self,
                logits_s: Tensor,
                logits_t: Tensor,
                images: Optional[Tensor] = None,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """Score the student's maps with a frozen view of the critic.

        Args:
            logits_s (Tensor): The student's class logits ``(N, K, H, W)``.
            logits_t (Tensor): The teacher's, the critic's "real" sample.
            images (Tensor, optional): The images, for a critic with
                ``in_image_channels`` (mmkd's ``'batch.inputs'``).
            valid_mask (Tensor, optional): ``(N, 1, H', W')``, False at
                pixels to leave out (``'batch.valid_mask'``): the critic's
                maps are zeroed there. The official critic sees whole maps.
        """
        critic = self.critic
        if critic is None:
            raise RuntimeError(
                'HolisticKDLoss has no critic: bind one with loss.bind(critic)'
                " (StructuredDistiller does, from model.critic)")
        maps_s, maps_t = logits_s, logits_t
        if getattr(critic, 'input_type', 'logits') == 'probs':
            maps_s, maps_t = maps_s.softmax(dim=1), maps_t.softmax(dim=1)
        if valid_mask is not None:
            maps_s, maps_t = masked(maps_s, valid_mask), masked(
                maps_t, valid_mask)
        if images is not None:
            images = images.detach()
        self.critic_batch = (maps_s.detach(), maps_t.detach(), images)
        frozen = {
            name: param.detach()
            for name, param in critic.named_parameters()
        }
        args = (maps_s, ) if images is None else (maps_s, images)
        scores = functional_call(critic, frozen, args)
        return -self.loss_weight * scores.mean()
