"""Holistic (adversarial) distillation of segmentation maps (structured KD;
Liu et al., CVPR 2019 / TPAMI 2020): a WGAN-GP critic and its two losses."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import spectral_norm

from mmkd.registry import MODELS

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


@MODELS.register_module()
class HolisticCritic(nn.Module):
    """WGAN-GP critic that scores a segmentation map, optionally
    conditioned on the image, with one number per sample.

    The discriminator of `Structured Knowledge Distillation for Semantic
    Segmentation <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019;
    TPAMI 2020 as "Structured Knowledge Distillation for Dense Prediction"),
    after the official ``networks/sagan_models.py``: four spectral-norm 4x4
    stride-2 convolutions (``b, 2b, 4b, 8b`` channels, LeakyReLU 0.1) with
    self-attention after the third and the fourth, then a plain convolution
    to one channel.

    Departures from the official code: the input is the softmax
    probabilities (the paper's ``Q``), not raw logits passed through a
    BN / tanh / affine preprocessing; the image, when used, is resized
    (bilinear) to the map and concatenated on channels, as in the paper's
    conditional critic (the official code feeds the map alone); the last
    layer is a 3x3 "same" convolution averaged over positions instead of a
    4x4 valid one sized for 65x65 inputs, so any map of at least 16x16 gets
    one score.

    Args:
        num_classes (int): Channels of the probability maps.
        in_image_channels (int): Channels of the image to concatenate, 0 for
            none. Defaults to 0.
        base_channels (int): Width ``b`` of the first convolution.
            Defaults to 64.

    Example:
        >>> import torch
        >>> critic = HolisticCritic(3, in_image_channels=3, base_channels=8)
        >>> probs = torch.randn(2, 3, 16, 16).softmax(dim=1)
        >>> critic(probs, torch.rand(2, 3, 128, 128)).shape
        torch.Size([2])
    """

    def __init__(self,
                 num_classes: int,
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
        self.num_classes = num_classes
        self.in_image_channels = in_image_channels
        b = base_channels
        self.features = nn.Sequential(
            _down(num_classes + in_image_channels, b), _down(b, 2 * b),
            _down(2 * b, 4 * b), SelfAttention(4 * b), _down(4 * b, 8 * b),
            SelfAttention(8 * b))
        self.score = nn.Conv2d(8 * b, 1, kernel_size=3, padding=1)

    def forward(self,
                probs: Tensor,
                images: Optional[Tensor] = None) -> Tensor:
        """Score ``(N, num_classes, H, W)`` maps; return shape ``(N,)``."""
        self._check(probs, images)
        x = probs
        if self.in_image_channels:
            images = F.interpolate(
                images.to(probs.dtype),
                size=probs.shape[-2:],
                mode='bilinear',
                align_corners=False)
            x = torch.cat([probs, images], dim=1)
        return self.score(self.features(x)).mean(dim=(1, 2, 3))

    def _check(self, probs: Tensor, images: Optional[Tensor]) -> None:
        """Raise a ValueError naming the shapes of bad inputs."""
        if probs.dim() != 4 or probs.shape[1] != self.num_classes:
            raise ValueError(
                f'HolisticCritic(num_classes={self.num_classes}) needs '
                f'(N, {self.num_classes}, H, W) maps, got '
                f'{tuple(probs.shape)}')
        if min(probs.shape[-2:]) < MIN_MAP_SIZE:
            raise ValueError(
                f'HolisticCritic needs maps of at least {MIN_MAP_SIZE}x'
                f'{MIN_MAP_SIZE}, got {tuple(probs.shape[-2:])}: upsample '
                'the maps first')
        if not self.in_image_channels:
            if images is not None:
                raise ValueError(
                    'images given to a HolisticCritic built with '
                    'in_image_channels=0: set in_image_channels=3')
            return
        expected = (probs.shape[0], self.in_image_channels)
        if images is None or images.dim() != 4 or images.shape[:2] != expected:
            got = None if images is None else tuple(images.shape)
            raise ValueError(
                f'HolisticCritic(in_image_channels={self.in_image_channels})'
                f' needs images of shape ({expected[0]}, {expected[1]}, H, W)'
                f' for maps {tuple(probs.shape)}, got {got}')


def _score(critic: nn.Module, probs: Tensor,
           images: Optional[Tensor]) -> Tensor:
    """``critic(probs)`` or ``critic(probs, images)``."""
    return critic(probs) if images is None else critic(probs, images)


def gradient_penalty(critic: nn.Module,
                     probs_s: Tensor,
                     probs_t: Tensor,
                     images: Optional[Tensor] = None) -> Tensor:
    """WGAN-GP penalty ``mean_n (||grad_x D(x_n)||_2 - 1)^2`` on random
    interpolates ``x = alpha Q_t + (1 - alpha) Q_s``.

    ``alpha ~ U(0, 1)`` is drawn per sample as ``torch.rand(N, 1, 1, 1)``
    (as the official code); both maps are detached and the gradient is taken
    with respect to the maps only (the image is a fixed condition). The
    graph is kept so that the penalty trains the critic. `Improved Training
    of Wasserstein GANs <https://arxiv.org/abs/1704.00028>`_ (Gulrajani et
    al., NeurIPS 2017).

    Example:
        >>> import torch
        >>> critic = lambda x: 2 * x.flatten(1).sum(1)  # gradient norm 2
        >>> probs = torch.rand(3, 1, 1, 1)
        >>> float(gradient_penalty(critic, probs, probs))
        1.0
    """
    real, fake = probs_t.detach(), probs_s.detach()
    alpha = torch.rand(
        real.shape[0], 1, 1, 1, dtype=real.dtype, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = _score(critic, mixed, images)
    grad, = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return ((norm - 1)**2).mean()


def critic_loss(critic: nn.Module,
                probs_s: Tensor,
                probs_t: Tensor,
                images: Optional[Tensor] = None,
                gp_weight: float = 10.0) -> Tensor:
    """The critic's WGAN-GP loss
    ``E[D(Q_s)] - E[D(Q_t)] + gp_weight * GP``.

    The teacher's maps are the "real" samples, the student's the "fake"
    ones. Both (and the images) are detached, so only the critic gets
    gradients; step it with its own optimizer (lr 4e-4 in the paper).
    ``gp_weight`` is the paper's ``lambda_gp = 10``. The official code
    additionally scales this loss by ``lambda_d = 0.1``; with plain SGD that
    only rescales the critic's learning rate, so it is left to the
    optimizer here. See :func:`gradient_penalty`.

    Example:
        >>> import torch
        >>> critic = HolisticCritic(num_classes=2, base_channels=4)
        >>> probs_s = torch.randn(2, 2, 16, 16).softmax(dim=1)
        >>> probs_t = torch.randn(2, 2, 16, 16).softmax(dim=1)
        >>> critic_loss(critic, probs_s, probs_t).backward()
        >>> critic.score.weight.grad is not None
        True
    """
    if probs_s.shape != probs_t.shape:
        raise ValueError(
            'critic_loss needs student and teacher maps of the same shape, '
            f'got student {tuple(probs_s.shape)} and teacher '
            f'{tuple(probs_t.shape)}')
    if images is not None:
        images = images.detach()
    loss = (
        _score(critic, probs_s.detach(), images).mean() -
        _score(critic, probs_t.detach(), images).mean())
    if gp_weight:
        loss = loss + gp_weight * gradient_penalty(critic, probs_s, probs_t,
                                                   images)
    return loss


@MODELS.register_module()
class HolisticKDLoss(nn.Module):
    """The student's adversarial term ``-loss_weight * E[D(Q_s)]``.

    The holistic term of `Structured Knowledge Distillation for Semantic
    Segmentation <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019;
    TPAMI 2020 as "Structured Knowledge Distillation for Dense Prediction"),
    ``lambda_d = 0.1``. The student's maps are *not* detached: the gradient
    flows through the critic into the student. The critic is run with
    detached copies of its parameters, so its parameters receive no
    gradient from this term (its buffers, e.g. spectral-norm power
    iterations, update as in any forward); pass the bare critic module, not
    a DDP wrapper. The distiller steps only the student's optimizer on this
    term and updates the critic separately with :func:`critic_loss`,
    alternating the two.

    Args:
        loss_weight (float): Weight ``lambda_d`` of the loss. Defaults
            to 0.1.

    Example:
        >>> import torch
        >>> critic = HolisticCritic(num_classes=3, base_channels=8)
        >>> logits_s = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> HolisticKDLoss()(logits_s.softmax(dim=1), critic).backward()
        >>> logits_s.grad is not None, critic.score.weight.grad is None
        (True, True)
    """

    def __init__(self, loss_weight: float = 0.1) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self,
                probs_s: Tensor,
                critic: nn.Module,
                images: Optional[Tensor] = None) -> Tensor:
        """Score the student's maps with a frozen view of ``critic``."""
        frozen = {
            name: param.detach()
            for name, param in critic.named_parameters()
        }
        args = (probs_s, ) if images is None else (probs_s, images.detach())
        scores = functional_call(critic, frozen, args)
        return -self.loss_weight * scores.mean()
