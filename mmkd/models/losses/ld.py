"""Localization distillation, LD (Zheng et al., CVPR 2022)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_temperature


def localization_distillation(logits_s: Tensor, logits_t: Tensor,
                              temperature: float) -> Tensor:
    """Per-row ``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over
    the bins of each row, of (N, bins) logits; the teacher is detached."""
    log_p_s = F.log_softmax(logits_s / temperature, dim=1)
    p_t = F.softmax(logits_t.detach().to(logits_s.dtype) / temperature, dim=1)
    kl = F.kl_div(log_p_s, p_t, reduction='none').mean(dim=1)
    return kl * temperature**2


@MODELS.register_module()
class LDLoss(DistillLoss):
    """Temperature-scaled KL divergence between box-edge distributions.

    ``loss = loss_weight * sum_i w_i * T^2 * KL(p_t,i || p_s,i) / avg_factor``
    with ``p = softmax(z / T)`` over the ``reg_max + 1`` bins of one box edge
    and the KL averaged over the bins: the LD term of `Localization
    Distillation for Dense Object Detection
    <https://arxiv.org/abs/2102.12252>`_ (Zheng et al., CVPR 2022; official
    code `HikariTJU/LD <https://github.com/HikariTJU/LD>`_). Each row is one
    edge of one location (:class:`mmkd.models.GFLPairing` gives them);
    ``w_i`` is the student's max class score of the location in the main
    region, its IoU with the ground truth in the valuable localization
    region. The defaults are the main region's, as in mmdet's ``LDHead``
    (``KnowledgeDistillationKLDivLoss`` with ``avg_factor=4.0``, i.e. a sum
    over locations of the mean over their four edges, not divided by the
    number of locations); the official VLR term uses ``avg_factor=16.0`` and
    the official classification KD (``T = 2``, weight 10, per level averaged
    over its positives) is this loss on class logits with
    ``avg_factor=1.0`` and ``w_i = 1 / positives of the level``. The teacher
    is detached; no rows give 0.

    On the same rows and weights the three terms equal the official
    ``LDHead.loss_single`` (summed over levels), values and gradients.
    Departures: ``avg_factor`` is set per loss (a call's ``avg_factor``
    overrides it, as in mmdet; the per-level KD divisor goes into ``w_i``
    instead, which gives the same sum); any ``T > 0`` is accepted
    (officially ``T >= 1``); the official head's zero-weighted extras
    (``loss_kd_neg`` times 0, ``loss_im`` weight 0) are left out.

    Args:
        temperature (float): Softmax temperature ``T`` of both sides.
            Defaults to 10.0.
        avg_factor (float, optional): What the weighted sum over rows is
            divided by when a call gives none; None averages over rows.
            Defaults to 4.0.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 0.25.

    Example:
        >>> import torch
        >>> loss = LDLoss(temperature=1.0, avg_factor=None, loss_weight=1.0)
        >>> s = torch.zeros(1, 2)  # p_s = (1/2, 1/2)
        >>> t = torch.tensor([[0., 100.]])  # p_t = (0, 1)
        >>> # KL = log 2, averaged over the 2 bins
        >>> round(float(loss(s, t)), 4)
        0.3466
        >>> float(LDLoss()(torch.zeros(0, 17), torch.zeros(0, 17)))
        0.0
    """

    compares_distributions = True  # no adapter; counts must match

    def __init__(self,
                 temperature: float = 10.0,
                 avg_factor: Optional[float] = 4.0,
                 loss_weight: float = 0.25,
                 reduction: str = 'mean') -> None:
        super().__init__(reduction, loss_weight)
        self.temperature = check_temperature(temperature)
        if avg_factor is not None and not 0 < avg_factor < float('inf'):
            raise ValueError(
                f'avg_factor must be > 0 or None, got avg_factor={avg_factor}')
        self.avg_factor = avg_factor

    def forward(self,
                logits_s: Tensor,
                logits_t: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss of (N, bins) student and teacher logits.

        Args:
            logits_s (Tensor): Student logits, one row per box edge.
            logits_t (Tensor): Teacher logits of the same rows.
            weight (Tensor, optional): (N, ) weight of each row.
                Defaults to None (all 1).
            avg_factor (float, optional): Divisor of the weighted sum.
                Defaults to None: the loss's own ``avg_factor``.
            reduction_override (str, optional): As in mmdet's losses.
        """
        if logits_s.dim() != 2 or logits_s.shape != logits_t.shape:
            raise ValueError(
                'LD expects student and teacher logits of the same shape (N, '
                f'bins), got {tuple(logits_s.shape)} and '
                f'{tuple(logits_t.shape)}')
        if weight is not None and weight.shape != logits_s.shape[:1]:
            raise ValueError(
                f'LD expects one weight per row ({logits_s.shape[0]}), got '
                f'weights of shape {tuple(weight.shape)}')
        return super().forward(
            logits_s, logits_t, weight,
            self.avg_factor if avg_factor is None else avg_factor,
            reduction_override)

    def elementwise(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """``T^2 KL`` of each row, averaged over its bins."""
        return localization_distillation(logits_s, logits_t, self.temperature)
