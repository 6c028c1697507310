"""Teacher-bounded box regression (Chen et al., NeurIPS 2017)."""
from typing import Optional

from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_reduction


def teacher_bounded_regression(pred_s: Tensor,
                               pred_t: Tensor,
                               target: Tensor,
                               margin: float = 0.) -> Tensor:
    """Per-sample ``e_s if e_s + margin > e_t else 0``, ``e = ||R - y||^2``."""
    err_s = (pred_s - target).pow(2).sum(dim=1)
    err_t = (pred_t - target).pow(2).sum(dim=1)
    return err_s * (err_s + margin > err_t).to(err_s.dtype)


@MODELS.register_module()
class BoundedRegressionLoss(DistillLoss):
    """L2 box regression applied only where the student is not beating the
    teacher by the margin.

    Per sample ``i``, ``e_s = ||R_s - y||^2`` and ``e_t = ||R_t - y||^2``;
    ``l_i = w_i * e_s if e_s + margin > e_t else 0``: the teacher-bounded
    regression loss ``L_b`` of `Learning Efficient Object Detection Models
    with Knowledge Distillation <https://papers.nips.cc/paper/6676>`_ (Chen
    et al., NeurIPS 2017). The teacher's error is an upper bound the student
    must reach, after which the term vanishes.

    The paper adds ``nu * L_b`` (``nu = 0.5``: set ``loss_weight``) to the
    smooth-L1 box loss and normalises the sum by ``N``, the number of sampled
    RoIs (``M`` sampled anchors at the RPN), exactly as that box loss (Eq.
    1). Pass the student box loss's ``avg_factor`` (mmdet: all sampled RoIs
    at the R-CNN, positives + negatives at the RPN; :class:`RoIPairing` and
    :class:`RPNPairing` record it as ``avg_factor``): ``loss = loss_weight *
    sum_i l_i / avg_factor``. Without it, ``reduction='mean'`` averages over
    all ``N`` rows given, as mmdet's losses do. Only positives carry a box
    target, so ``weight`` is 1 on positives and 0 elsewhere; averaging over
    the positives instead (as this loss once did) makes the term
    ``N / num_pos`` times stronger than the paper's (18x at the R-CNN, 73x
    at the RPN on a digits batch).

    ``y`` are the student's regression targets (encoded deltas) for the same
    proposals or anchors on which the teacher's deltas ``R_t`` were computed.
    ``weight`` is per sample ``(N,)``, or ``(N, 4)`` like mmdet's
    ``bbox_weights``, reduced per sample with ``.amax(dim=1)`` (a sample
    counts if any of its coordinates does). The teacher and targets are
    detached.

    Args:
        margin (float): Margin ``m`` by which the student must beat the
            teacher before the term switches off. Defaults to 0.0.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = BoundedRegressionLoss()
        >>> target = torch.zeros(2, 4)
        >>> pred_t = torch.full((2, 4), 0.5)  # e_t = 1 for both samples
        >>> pred_s = torch.tensor([[2., 0, 0, 0], [0.5, 0, 0, 0]])
        >>> # e_s = (4, 0.25): only the first is above the teacher's bound
        >>> float(loss(pred_s, pred_t, target))
        2.0
        >>> float(loss(pred_s, pred_t, target, avg_factor=8))
        0.5
    """

    def __init__(self,
                 margin: float = 0.,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.margin = margin

    def forward(self,
                pred_s: Tensor,
                pred_t: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss of (N, 4) deltas; ``weight`` is (N,) or (N, 4);
        ``avg_factor`` divides the sum (mmdet's convention)."""
        if pred_s.dim() != 2 or pred_s.shape != pred_t.shape \
                or pred_s.shape != target.shape:
            raise ValueError(
                'teacher-bounded regression expects (N, 4) student deltas, '
                'teacher deltas and targets of one shape, got '
                f'{tuple(pred_s.shape)}, {tuple(pred_t.shape)} and '
                f'{tuple(target.shape)}')
        reduction = self.reduction if reduction_override is None else \
            check_reduction(reduction_override, 'reduction_override')
        if weight is not None:
            if weight.shape == pred_s.shape:
                weight = weight.amax(dim=1)
            elif weight.shape != pred_s.shape[:1]:
                raise ValueError(
                    f'weight must have shape {tuple(pred_s.shape[:1])} (per '
                    f'sample) or {tuple(pred_s.shape)} (per coordinate), got '
                    f'{tuple(weight.shape)}')
        if avg_factor is not None:
            avg_factor = float(avg_factor)
            if reduction == 'mean':
                avg_factor = max(avg_factor, 1.)
        return super().forward(pred_s, pred_t, weight, avg_factor, reduction,
                               target=target)

    def elementwise(self, pred_s: Tensor, pred_t: Tensor,
                    target: Tensor) -> Tensor:
        """The bounded L2 term of each sample."""
        return teacher_bounded_regression(pred_s, pred_t,
                                          target.detach().to(pred_s.dtype),
                                          self.margin)
