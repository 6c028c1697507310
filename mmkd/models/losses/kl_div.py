"""Hinton's soft-target KD on logits, as KD++ uses it (batch mean)."""
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_temperature


@MODELS.register_module()
class KLDivLoss(DistillLoss):
    """``loss_weight * T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i /
    T))``, the KL summed over the classes and averaged over the samples.

    This is ``F.kl_div(..., reduction='batchmean')``, the ``KDLoss`` of
    `Distilling the Knowledge in a Neural Network
    <https://arxiv.org/abs/1503.02531>`_ as the KD++ code uses it on RoI
    logits (`WangYZ1608/Knowledge-Distillation-via-ND
    <https://github.com/WangYZ1608/Knowledge-Distillation-via-ND>`_,
    ``Detection/model/utils.py``). mmdet's ``KnowledgeDistillationKLDivLoss``
    *averages* over the classes instead, so at the same ``loss_weight`` it is
    ``1 / C`` of this (1/81 on COCO RoIs). Logits are ``(N, C)`` or ``(N, C,
    ...)``: the softmax is over dim 1 and the mean over every other
    position. The teacher is detached; no samples give 0.

    On ``(N, C)`` logits this equals the official ``KDLoss`` (``kd_weight``
    is ``loss_weight``; the official detection runs use ``T = 1``, weight 1).
    Departures: maps are an extension (the official loss only sees RoI
    logits; its ``'batchmean'`` on an ``(N, C, H, W)`` map would sum over
    the ``H * W`` positions, not average them), and an empty batch gives 0
    where the official code gives NaN.

    Args:
        temperature (float): Softmax temperature ``T``. Defaults to 1.0.
        reduction (str): 'none', 'mean' or 'sum' over the positions
            (mmdet's ``weight``, ``avg_factor`` and ``reduction_override``
            apply, see :class:`DistillLoss`). Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = KLDivLoss()
        >>> s, t = torch.zeros(1, 2), torch.tensor([[0., 0.]])
        >>> float(loss(s, t))  # same distribution
        0.0
        >>> t = torch.tensor([[1e4, 0.]])  # teacher one-hot on class 0
        >>> round(float(loss(s, t)), 4)  # -log(1/2)
        0.6931
    """

    compares_distributions = True  # no adapter; counts must match

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'logits'

    def __init__(self,
                 temperature: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.temperature = check_temperature(temperature)

    def elementwise(self, pred_s: Tensor, pred_t: Tensor) -> Tensor:
        """``T^2 KL`` of each position, summed over the classes (dim 1)."""
        if pred_s.shape != pred_t.shape or pred_s.dim() < 2:
            raise ValueError(
                'KLDivLoss expects student and teacher logits of one shape '
                f'(N, C, ...), got {tuple(pred_s.shape)} and '
                f'{tuple(pred_t.shape)}')
        T = self.temperature
        log_p_s = F.log_softmax(pred_s / T, dim=1)
        log_p_t = F.log_softmax(pred_t / T, dim=1)
        return T * T * (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
