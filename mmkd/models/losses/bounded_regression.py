"""Teacher-bounded box regression (Chen et al., NeurIPS 2017)."""
from typing import Optional

from torch import Tensor, nn

from mmkd.registry import MODELS


def teacher_bounded_regression(pred_s: Tensor,
                               pred_t: Tensor,
                               target: Tensor,
                               margin: float = 0.) -> Tensor:
    """Per-sample ``e_s if e_s + margin > e_t else 0``, ``e = ||R - y||^2``."""
    err_s = (pred_s - target).pow(2).sum(dim=1)
    err_t = (pred_t - target).pow(2).sum(dim=1)
    return err_s * (err_s + margin > err_t).to(err_s.dtype)


@MODELS.register_module()
class BoundedRegressionLoss(nn.Module):
    """L2 box regression applied only where the student is not beating the
    teacher by the margin.

    Per sample ``i``, ``e_s = ||R_s - y||^2`` and ``e_t = ||R_t - y||^2``;
    ``l_i = e_s if e_s + margin > e_t else 0`` and
    ``loss = loss_weight * sum_i w_i l_i / max(sum_i w_i, 1)``: the
    teacher-bounded regression loss ``L_b`` of `Learning Efficient Object
    Detection Models with Knowledge Distillation
    <https://papers.nips.cc/paper/6676>`_ (Chen et al., NeurIPS 2017). The
    teacher's error is an upper bound the student must reach, after which the
    term vanishes. The paper adds ``nu * L_b`` to the smooth-L1 loss, with
    ``nu = 0.5`` (set ``loss_weight``).

    ``y`` are the student's regression targets (encoded deltas) for the same
    proposals or anchors on which the teacher's deltas ``R_t`` were computed.
    ``weight`` selects the samples to average over (the positives): a
    per-sample ``(N,)`` weight, or an ``(N, 4)`` weight such as mmdet's
    ``bbox_weights``, reduced per sample with ``.amax(dim=1)`` (a sample counts
    if any of its coordinates does). The teacher and targets are detached.

    Args:
        margin (float): Margin ``m`` by which the student must beat the
            teacher before the term switches off. Defaults to 0.0.
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
        >>> float(loss(pred_s, pred_t, target, weight=torch.tensor([1., 0])))
        4.0
    """

    def __init__(self, margin: float = 0., loss_weight: float = 1.0) -> None:
        super().__init__()
        self.margin = margin
        self.loss_weight = loss_weight

    def forward(self,
                pred_s: Tensor,
                pred_t: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None) -> Tensor:
        """Compute the loss of (N, 4) deltas; ``weight`` is (N,) or (N, 4)."""
        if pred_s.dim() != 2 or pred_s.shape != pred_t.shape \
                or pred_s.shape != target.shape:
            raise ValueError(
                'teacher-bounded regression expects (N, 4) student deltas, '
                'teacher deltas and targets of one shape, got '
                f'{tuple(pred_s.shape)}, {tuple(pred_t.shape)} and '
                f'{tuple(target.shape)}')
        if weight is None:
            weight = pred_s.new_ones(pred_s.shape[0])
        elif weight.shape == pred_s.shape:
            weight = weight.amax(dim=1)
        elif weight.shape != pred_s.shape[:1]:
            raise ValueError(
                f'weight must have shape {tuple(pred_s.shape[:1])} (per '
                f'sample) or {tuple(pred_s.shape)} (per coordinate), got '
                f'{tuple(weight.shape)}')
        if pred_s.shape[0] == 0:
            return pred_s.sum() * 0.
        weight = weight.detach().to(pred_s.dtype)
        per_sample = teacher_bounded_regression(
            pred_s,
            pred_t.detach().to(pred_s.dtype),
            target.detach().to(pred_s.dtype), self.margin)
        loss = (weight * per_sample).sum() / weight.sum().clamp(min=1.)
        return self.loss_weight * loss
