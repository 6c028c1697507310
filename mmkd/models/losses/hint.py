"""Hint-based feature imitation (FitNets; Chen et al., NeurIPS 2017)."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import Features, as_levels


@MODELS.register_module()
class FeatureHintLoss(nn.Module):
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

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, feat_s: Features, feat_t: Features) -> Tensor:
        """Compute the loss over one tensor or a sequence of levels."""
        levels_s, levels_t = as_levels(feat_s, feat_t)
        loss = sum(
            F.mse_loss(s,
                       t.detach().to(s.dtype))
            for s, t in zip(levels_s, levels_t) if s.numel() > 0)
        if isinstance(loss, int):  # every level empty
            return levels_s[0].sum() * 0.
        return self.loss_weight * loss
