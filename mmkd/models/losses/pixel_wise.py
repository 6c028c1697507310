"""Pixel-wise distillation of segmentation maps (structured KD; Liu et al.,
CVPR 2019 / TPAMI 2020)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS


@MODELS.register_module()
class PixelWiseKDLoss(nn.Module):
    """Cross-entropy of the student's class distribution against the
    teacher's, averaged over the labelled pixels.

    ``loss = loss_weight * T^2 * mean_valid_pixels(-sum_c p_t,c log p_s,c)``
    with ``p = softmax(z / T)``: the pixel-wise term of `Structured Knowledge
    Distillation for Semantic Segmentation
    <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019; TPAMI 2020
    as "Structured Knowledge Distillation for Dense Prediction"). The paper
    uses ``T = 1`` and ``loss_weight = 10``.

    Departures from the official code (``CriterionPixelWise``), which sums
    over all ``N * H * W`` pixels and divides by ``H * W``:

    - we take the mean over pixels, so with every pixel valid the value is
      the official one divided by the batch size ``N`` (it no longer grows
      with the batch);
    - pixels whose label is ``ignore_index`` are left out of the mean (the
      official code takes no labels); without ``gt`` every pixel counts;
    - an optional temperature, with the usual ``T^2`` gradient scaling.

    The student and teacher logits must have the same shape (resize them
    before the loss: this loss never broadcasts). A label map of another
    size is resized to the logits with nearest-neighbour interpolation. With
    no valid pixel the loss is 0, never NaN. The teacher side is detached.

    Args:
        temperature (float): Softmax temperature ``T``. Defaults to 1.0.
        ignore_index (int): Label of pixels left out. Defaults to 255.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import math, torch
        >>> loss = PixelWiseKDLoss()
        >>> s, t = torch.zeros(1, 2, 1, 2), torch.randn(1, 2, 1, 2)
        >>> round(float(loss(s, t)) / math.log(2), 6)  # uniform student
        1.0
        >>> float(loss(s, t, gt=torch.full((1, 1, 2), 255)))
        0.0
    """

    def __init__(self,
                 temperature: float = 1.0,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(
                f'temperature must be > 0, got temperature={temperature!r}')
        self.temperature = temperature
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self,
                logits_s: Tensor,
                logits_t: Tensor,
                gt: Optional[Tensor] = None) -> Tensor:
        """Compute the loss on ``(N, C, H, W)`` logits and an optional
        ``(N, H, W)`` or ``(N, 1, H, W)`` label map."""
        if logits_s.dim() != 4 or logits_s.shape != logits_t.shape:
            raise ValueError(
                'PixelWiseKDLoss needs (N, C, H, W) student and teacher '
                'logits of the same shape, got student '
                f'{tuple(logits_s.shape)} and teacher '
                f'{tuple(logits_t.shape)}: resize the maps (and use the '
                'same classes) before the loss')
        temp = self.temperature
        probs_t = F.softmax(logits_t.detach().to(logits_s.dtype) / temp, 1)
        log_probs_s = F.log_softmax(logits_s / temp, dim=1)
        cross_entropy = -(probs_t * log_probs_s).sum(dim=1)  # (N, H, W)
        if gt is None:
            loss = cross_entropy.mean()
        else:
            valid = self._label_map(gt, logits_s) != self.ignore_index
            loss = (
                cross_entropy[valid].sum() /
                valid.sum().clamp(min=1).to(cross_entropy.dtype))
        return self.loss_weight * temp**2 * loss

    @staticmethod
    def _label_map(gt: Tensor, logits: Tensor) -> Tensor:
        """``gt`` as ``(N, H, W)`` at the logits' size (nearest)."""
        if gt.dim() == 4 and gt.shape[1] == 1:
            gt = gt[:, 0]
        if gt.dim() != 3 or gt.shape[0] != logits.shape[0]:
            raise ValueError(
                'gt must be an (N, H, W) or (N, 1, H, W) label map with the '
                f'logits\' batch size, got gt {tuple(gt.shape)} for logits '
                f'{tuple(logits.shape)}')
        size = logits.shape[-2:]
        if gt.shape[-2:] != size:
            gt = F.interpolate(
                gt[:, None].float(), size=size, mode='nearest')[:, 0].long()
        return gt
