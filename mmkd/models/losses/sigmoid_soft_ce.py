"""Soft-label classification distillation for sigmoid (one-stage) heads."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import Features, as_levels


@MODELS.register_module()
class SigmoidSoftCELoss(nn.Module):
    """Binary cross-entropy from the teacher's softened per-class scores.

    One-stage heads (RetinaNet, FCOS, GFL) score each class with its own
    sigmoid and have no background column, so the softmax soft-label term
    of `Learning Efficient Object Detection Models with Knowledge
    Distillation <https://papers.nips.cc/paper/6676>`_ (Chen et al., NeurIPS
    2017; :class:`WeightedSoftCELoss`) becomes, per class and location,
    ``-(p_t log p_s + (1 - p_t) log(1 - p_s))`` with ``p = sigmoid(z / T)``,
    summed over the ``A * C`` channels (anchors times classes) and averaged
    over locations; levels (a head's per-level outputs, e.g. the tap
    ``'bbox_head.retina_cls'``) are summed. The background weighting of the
    softmax form has no counterpart here: departing from Chen et al., the
    negative part is not re-weighted. The teacher is detached.

    Chen et al. have no official code and no sigmoid form; the choices made
    here: no ``T ** 2`` factor (as :class:`WeightedSoftCELoss`), and the
    normaliser is every location of the map (``N * H * W``), not the
    sampled anchors nor the positives that sigmoid heads' own losses divide
    by (focal loss: the number of positives), so its weight against the
    task loss depends on the map size and the number of objects.

    Args:
        temperature (float): Softening temperature ``T``. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = SigmoidSoftCELoss()
        >>> z = torch.zeros(1, 2, 1, 1)  # p = 0.5 everywhere: 2 * log(2)
        >>> round(float(loss(z, z)), 4)
        1.3863
    """

    compares_distributions = True  # no adapter; counts must match

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got {temperature!r}')
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, logits_s: Features, logits_t: Features) -> Tensor:
        """Sum over levels of the mean per-location binary soft CE."""
        levels_s, levels_t = as_levels(logits_s, logits_t)
        total = levels_s[0].sum() * 0.
        for z_s, z_t in zip(levels_s, levels_t):
            if z_s.shape != z_t.shape:
                raise ValueError(
                    f'student logits {tuple(z_s.shape)} and teacher logits '
                    f'{tuple(z_t.shape)} differ; both heads need the same '
                    'anchors and classes')
            if z_s.numel() == 0:
                continue
            p_t = (z_t.detach() / self.temperature).sigmoid()
            bce = F.binary_cross_entropy_with_logits(
                z_s / self.temperature, p_t.to(z_s.dtype), reduction='none')
            total = total + bce.sum(1).mean()
        return self.loss_weight * total
