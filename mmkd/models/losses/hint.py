"""Hint-based feature imitation (FitNets; Chen et al., NeurIPS 2017)."""
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss


@MODELS.register_module()
class FeatureHintLoss(DistillLoss):
    """Mean squared error between (adapted) student and teacher features.

    ``loss = loss_weight * sum_levels mean((feat_s - feat_t) ** 2)``, the hint
    term of `Learning Efficient Object Detection Models with Knowledge
    Distillation <https://papers.nips.cc/paper/6676>`_ (Chen et al., NeurIPS
    2017), after FitNets (Romero et al., ICLR 2015). The distiller applies the
    1x1 adapter to the student side before this loss; the teacher side is
    detached here. Chen et al. weight the term by ``gamma = 0.5``, which the
    configs set as ``loss_weight``.

    Chen et al. have no official code. Their ``L_Hint(V, Z) = ||V - Z||_2^2``
    states no normaliser; here it is the mean over every element (batch,
    channels, positions) of each level, i.e. ``||V - Z||^2 / (N C H W)``,
    so the strength does not grow with the batch or the map size. Their
    hint is one layer; several levels (an FPN) are summed, not averaged, so
    five levels weigh five times one.

    Args:
        reduction (str): 'none', 'mean' or 'sum' over each level's elements
            (mmdet's ``weight``, ``avg_factor`` and ``reduction_override``
            apply, see :class:`DistillLoss`). Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = FeatureHintLoss(loss_weight=0.5)
        >>> s, t = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
        >>> float(loss(s, t))
        0.5
        >>> float(loss((s, s[..., :2, :2]), (t, t[..., :2, :2])))
        1.0
    """

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'features'

    def __init__(self, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)

    def elementwise(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Squared differences, averaged per level by the base class."""
        return (feat_s - feat_t)**2
