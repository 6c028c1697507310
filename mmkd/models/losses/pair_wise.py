"""Pair-wise (affinity) distillation of feature maps (structured KD; Liu et
al., CVPR 2019 / TPAMI 2020)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, Features


def pairwise_similarity(feat: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarities ``(N, HW, HW)`` between the spatial positions of
    an ``(N, C, H, W)`` map, computed in float32.

    As in the official ``similarity``: each position is divided by its L2
    norm over channels plus ``eps`` (``f / (||f|| + eps)``), and that norm
    is *detached*, so gradients flow through the numerators only.
    """
    feat = feat.float()
    norm = torch.linalg.vector_norm(feat, dim=1, keepdim=True) + eps
    feat = (feat / norm.detach()).flatten(2)
    return torch.einsum('bcm,bcn->bmn', feat, feat)


def masked(feat: Tensor, valid_mask: Tensor) -> Tensor:
    """``feat`` zeroed where ``valid_mask`` (resized by nearest neighbour to
    the map's size) is False; non-spatial inputs pass unchanged.

    Example:
        >>> import torch
        >>> valid = torch.tensor([[[[True, False]]]])
        >>> masked(torch.ones(1, 2, 1, 4), valid)[0, 0]
        tensor([[1., 1., 0., 0.]])
    """
    if feat.dim() != 4:
        return feat
    valid = valid_mask.to(feat.dtype)
    return feat * F.interpolate(valid, size=feat.shape[-2:])


@MODELS.register_module()
class PairWiseKDLoss(DistillLoss):
    """Squared difference of student and teacher spatial affinity matrices
    after coarse max pooling.

    ``loss = loss_weight * sum_levels sum_ij (a^s_ij - a^t_ij)^2 /
    (H'W')^2 / N``, ``a_ij = f_i^T f_j / ((||f_i|| + eps)(||f_j|| + eps))``
    over the ``H' x W'`` positions of the max-pooled map: the pair-wise term
    of `Structured Knowledge Distillation for Semantic Segmentation
    <https://arxiv.org/abs/1903.04197>`_ (Liu et al., CVPR 2019; TPAMI 2020
    as "Structured Knowledge Distillation for Dense Prediction"). The paper
    uses ``pool_scale = 0.5`` and ``loss_weight = 0.5``.

    Both maps are max-pooled with kernel and stride ``int(pool_scale * size)``
    per dimension (ceil mode), as the official
    ``CriterionPairWiseforWholeFeatAfterPool``; the normalisation matches the
    official ``sim_dis_compute`` (channel L2 norm plus ``eps = 1e-8``, norm
    detached, computed in float32). The official run trains on one GPU with
    8 images, so its ``/ N`` is the mean over the batch, as here. One
    departure: a kernel that would round to 0 (a side shorter than ``1 /
    pool_scale``) is 1 here, where the official code fails.

    Channel counts may differ; spatial sizes must match (the distiller
    resizes). A tuple or list of maps is one level per item, summed. The
    teacher side is detached.

    Args:
        pool_scale (float): Pooling kernel as a fraction of the map's size,
            in ``(0, 1]``. Defaults to 0.5.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = PairWiseKDLoss()  # 2x2 maps: 1x1 pooling, 4 positions
        >>> s = torch.tensor([[[1., 0.], [1., 0.]], [[0., 1.], [0., 1.]]])
        >>> t = torch.stack([torch.ones(2, 2), torch.zeros(2, 2)])
        >>> round(float(loss(s[None], t[None])), 6)  # 8 of 16 pairs differ
        0.5
    """

    # Affinities compare positions, not channels: widths may differ.
    channel_free = True

    def __init__(self,
                 pool_scale: float = 0.5,
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        if not 0 < pool_scale <= 1:
            raise ValueError('pool_scale must be in (0, 1], got '
                             f'pool_scale={pool_scale!r}')
        self.pool_scale = pool_scale

    def forward(self,
                feat_s: Features,
                feat_t: Features,
                valid_mask: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss over one map or a sequence of levels.

        Args:
            feat_s: The student's map(s), ``(N, C_s, H, W)``.
            feat_t: The teacher's map(s), ``(N, C_t, H, W)``.
            valid_mask (Tensor, optional): ``(N, 1, H', W')``, False at
                pixels to leave out (mmkd's ``'batch.valid_mask'``): both
                maps are zeroed there (the mask resized by nearest
                neighbour) before pooling. The official code masks nothing.
            **kwargs: mmdet's ``weight``, ``avg_factor`` and
                ``reduction_override``, see :class:`DistillLoss`.
        """
        return super().forward(feat_s, feat_t, valid_mask=valid_mask,
                               **kwargs)

    def elementwise(self,
                    feat_s: Tensor,
                    feat_t: Tensor,
                    valid_mask: Optional[Tensor] = None) -> Tensor:
        """Squared affinity differences ``(N, M, M)`` of one level: their
        mean is the official ``sim_dis_compute``."""
        if valid_mask is not None:
            feat_s, feat_t = masked(feat_s, valid_mask), masked(
                feat_t, valid_mask)
        return self._level_loss(feat_s, feat_t)

    def _level_loss(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """The official ``sim_dis_compute`` on max-pooled maps."""
        if (feat_s.dim() != 4 or feat_t.dim() != 4
                or feat_s.shape[0] != feat_t.shape[0]
                or feat_s.shape[2:] != feat_t.shape[2:]):
            raise ValueError(
                'PairWiseKDLoss needs (N, C, H, W) maps with the same batch '
                f'and spatial sizes, got student {tuple(feat_s.shape)} and '
                f'teacher {tuple(feat_t.shape)}: resize the maps first')
        kernel = [
            max(1, int(self.pool_scale * size)) for size in feat_t.shape[2:]
        ]
        pooled_s = F.max_pool2d(feat_s, kernel, kernel, ceil_mode=True)
        pooled_t = F.max_pool2d(feat_t, kernel, kernel, ceil_mode=True)
        diff = pairwise_similarity(pooled_t) - pairwise_similarity(pooled_s)
        return diff**2
