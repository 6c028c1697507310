"""Norm-and-direction (ND) loss on embeddings (Wang et al., 2023)."""
from typing import Optional

import torch
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss


@MODELS.register_module()
class NDLoss(DistillLoss):
    """Align the student's embedding with its class's teacher centroid while
    pushing its norm up to the teacher's.

    ``loss = loss_weight * mean_i[1 - <s_i, c_{y_i} / ||c_{y_i}||> /
    max(||s_i||, ||t_i||)]``, the ``DirectNormLoss`` of `Improving Knowledge
    Distillation via Regularizing Feature Norm and Direction
    <https://arxiv.org/abs/2305.17007>`_ (Wang et al., 2023; official code
    `WangYZ1608/Knowledge-Distillation-via-ND
    <https://github.com/WangYZ1608/Knowledge-Distillation-via-ND>`_). ``s_i``
    and ``t_i`` are student and teacher embeddings of the same sample (the RoI
    box head's shared-FC output in Faster R-CNN), ``c_k`` the class-mean
    teacher embeddings computed beforehand, one per class including the
    background (mmdet labels background as ``num_classes``, so ``K =
    num_classes + 1``). Norms are L2.

    As in the official code the result is the mean over samples, the teacher
    only enters through its norm, and the gradient flows through ``||s_i||``
    wherever ``||s_i|| >= ||t_i||`` (Python's ``max`` picks the student on a
    tie; reproduced here). The official code keeps centroids as constants from
    a JSON file and computes the teacher under no-grad; here teacher and
    centres are ``.detach()``ed. Departures, both for robustness only: the
    denominators are clamped to at least ``eps`` (the official code returns
    NaN/inf for an all-zero embedding or centroid), and an empty batch gives 0
    (the official code divides by ``len(labels) = 0``).

    Args:
        loss_weight (float): Weight of the loss (``nd_weight`` in the official
            code). Defaults to 1.0.
        eps (float): Lower bound of the norms divided by. Defaults to 1e-12.
        reduction (str): 'none', 'mean' or 'sum' over the samples. Defaults
            to 'mean'.

    Example:
        >>> import torch
        >>> loss = NDLoss()
        >>> centers = torch.tensor([[2., 0.], [0., 3.]])  # K=2 classes, D=2
        >>> emb_s = torch.tensor([[1., 0.], [0., 1.]])
        >>> emb_t = torch.tensor([[2., 0.], [0., 0.5]])
        >>> labels = torch.tensor([0, 1])
        >>> # sample 0: 1 - 1 / max(1, 2) = 0.5; sample 1: 1 - 1 / 1 = 0
        >>> float(loss(emb_s, emb_t, labels, centers))
        0.25
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 eps: float = 1e-12,
                 reduction: str = 'mean') -> None:
        super().__init__(reduction, loss_weight)
        self.eps = eps

    @staticmethod
    def _check(emb_s: Tensor, emb_t: Tensor, labels: Tensor,
               centers: Tensor) -> None:
        """Raise ValueError naming the shapes that do not fit together."""
        if emb_s.dim() != 2 or emb_s.shape != emb_t.shape:
            raise ValueError(
                'ND loss expects student and teacher embeddings of one shape '
                f'(N, D), got {tuple(emb_s.shape)} and {tuple(emb_t.shape)}')
        if labels.shape != emb_s.shape[:1]:
            raise ValueError(
                f'labels must have shape ({emb_s.shape[0]},), one per '
                f'embedding, got {tuple(labels.shape)}')
        if labels.is_floating_point() or labels.is_complex():
            raise ValueError(
                f'labels must be integer class indices, got {labels.dtype}')
        if centers.dim() != 2 or centers.shape[1] != emb_s.shape[1]:
            raise ValueError(
                f'centers must have shape (K, D) with D={emb_s.shape[1]} (the '
                f'embeddings\' D), got {tuple(centers.shape)}: centers of D='
                f'{centers.shape[-1]} were computed on another layer')
        if labels.numel():
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= centers.shape[0]:
                raise ValueError(
                    f'labels must lie in [0, K) with K={centers.shape[0]} '
                    f'centers, got min label {lo} and max label {hi}: '
                    'include one centre per class plus the background')

    def forward(self,
                emb_s: Tensor,
                emb_t: Tensor,
                labels: Tensor,
                centers: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss of (N, D) embeddings, (N,) labels, (K, D)
        centres; ``weight``, ``avg_factor`` and ``reduction_override`` as in
        mmdet's losses."""
        return super().forward(
            emb_s,
            emb_t,
            weight,
            avg_factor,
            reduction_override,
            labels=labels,
            centers=centers)

    def elementwise(self, emb_s: Tensor, emb_t: Tensor, labels: Tensor,
                    centers: Tensor) -> Tensor:
        """``1 - <e_s, c_y / |c_y|> / max(|e_s|, |e_t|)`` of each sample."""
        self._check(emb_s, emb_t, labels, centers)
        centers = centers.detach().to(emb_s.dtype)
        unit_c = centers / centers.norm(
            p=2, dim=1, keepdim=True).clamp(min=self.eps)
        norm_s = emb_s.norm(p=2, dim=1)
        norm_t = emb_t.norm(p=2, dim=1)
        max_norm = torch.where(norm_s >= norm_t, norm_s, norm_t)
        proj = (emb_s * unit_c[labels.long()]).sum(dim=1)
        return 1 - proj / max_norm.clamp(min=self.eps)
