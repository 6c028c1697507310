"""Pixel-wise distillation of segmentation maps (structured KD; Liu et al.,
CVPR 2019 / TPAMI 2020)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_reduction, check_temperature

#: ``'batch_sum'``: the official sum over images of per-image pixel means.
REDUCTIONS = ('mean', 'batch_sum', 'sum', 'none')


@MODELS.register_module()
class PixelWiseKDLoss(DistillLoss):
    """Cross-entropy of the student's class distribution against the
    teacher's, over the labelled pixels.

    ``loss = loss_weight * T^2 * reduce(-sum_c p_t,c log p_s,c)`` with
    ``p = softmax(z / T)``: the pixel-wise term of `Structured Knowledge
    Distillation for Semantic Segmentation
    <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019; TPAMI 2020
    as "Structured Knowledge Distillation for Dense Prediction"), official
    ``utils/criterion.py`` ``CriterionPixelWise`` (``lambda_pi = 10``,
    ``T = 1``). Two reductions:

    - ``'batch_sum'`` is the official one: each image's cross-entropy summed
      over its pixels and divided by ``H * W``, then summed over the images
      of the (per-GPU) batch, so the term grows with the batch size ``N``;
    - ``'mean'`` averages over the batch's labelled pixels; it is the
      official value divided by ``N``, independent of the batch. The
      official runs (``run_train_val.sh``) put 8 images on one GPU, so
      ``loss_weight = 80`` with ``'mean'`` reproduces their strength
      (``10 x 8``) on any split of 8 images over GPUs; this is what
      ``configs/_base_/methods/skd.py`` uses.

    Departures from the official code: pixels whose label is
    ``ignore_index`` contribute nothing (the official code takes no labels;
    ``'batch_sum'`` still divides by ``H * W``, ``'mean'`` by the number of
    labelled pixels); without ``gt`` every pixel counts; an optional
    temperature with the usual ``T^2`` gradient scaling.

    The student and teacher logits must have the same shape (resize them
    before the loss: this loss never broadcasts). A label map of another
    size is resized to the logits with nearest-neighbour interpolation. With
    no valid pixel the loss is 0, never NaN. The teacher side is detached.

    Args:
        temperature (float): Softmax temperature ``T``. Defaults to 1.0.
        ignore_index (int): Label of pixels left out. Defaults to 255.
        reduction (str): ``'mean'`` or ``'batch_sum'`` (see above), or
            mmdet's ``'sum'`` and ``'none'``. Defaults to ``'mean'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import math, torch
        >>> loss = PixelWiseKDLoss()
        >>> s, t = torch.zeros(2, 2, 1, 2), torch.randn(2, 2, 1, 2)
        >>> round(float(loss(s, t)) / math.log(2), 6)  # uniform student
        1.0
        >>> official = PixelWiseKDLoss(reduction='batch_sum')
        >>> round(float(official(s, t)) / math.log(2), 6)  # N = 2 images
        2.0
        >>> float(loss(s, t, gt=torch.full((2, 1, 2), 255)))
        0.0
    """

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'logits'

    def __init__(self,
                 temperature: float = 1.0,
                 ignore_index: int = 255,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        self.temperature = check_temperature(temperature)
        self.ignore_index = ignore_index
        self.reduction = check_reduction(reduction, valid=REDUCTIONS)

    def forward(self,
                logits_s: Tensor,
                logits_t: Tensor,
                gt: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss on ``(N, C, H, W)`` logits and an optional
        ``(N, H, W)`` or ``(N, 1, H, W)`` label map; ``weight`` is per
        pixel ``(N, H, W)``, ``avg_factor`` replaces the reduction's
        divisor."""
        if logits_s.dim() != 4 or logits_s.shape != logits_t.shape:
            raise ValueError(
                'PixelWiseKDLoss needs (N, C, H, W) student and teacher '
                'logits of the same shape, got student '
                f'{tuple(logits_s.shape)} and teacher '
                f'{tuple(logits_t.shape)}: resize the maps (and use the '
                'same classes) before the loss')
        reduction = self.reduction
        if reduction_override is not None:
            reduction = check_reduction(reduction_override,
                                        'reduction_override', REDUCTIONS)
        shape = (logits_s.shape[0], ) + logits_s.shape[2:]
        valid = (torch.ones(shape, dtype=torch.bool, device=logits_s.device)
                 if gt is None else
                 self._label_map(gt, logits_s) != self.ignore_index)
        valid = valid.to(logits_s.dtype)
        weight = valid if weight is None else weight * valid
        if reduction in ('mean', 'batch_sum'):
            if avg_factor is None:
                # 'batch_sum': the official sum over pixels / (H * W)
                avg_factor = (valid.sum().clamp(min=1) if reduction == 'mean'
                              else float(shape[1] * shape[2]))
            reduction = 'mean'
        return super().forward(logits_s, logits_t, weight, avg_factor,
                               reduction)

    def elementwise(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """``T^2`` times the soft CE of each pixel, ``(N, H, W)``."""
        temp = self.temperature
        probs_t = F.softmax(logits_t / temp, dim=1)
        log_probs_s = F.log_softmax(logits_s / temp, dim=1)
        return -(probs_t * log_probs_s).sum(dim=1) * temp**2

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
