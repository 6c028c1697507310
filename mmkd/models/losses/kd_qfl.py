"""Quality-focal distillation of sigmoid class scores (CrossKD)."""
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss


@MODELS.register_module()
class KDQualityFocalLoss(DistillLoss):
    """Binary cross-entropy towards the teacher's sigmoid scores, focused by
    ``|sigmoid(s) - sigmoid(t)|^beta``.

    ``loss_i = sum_c BCE(s_ic, sigmoid(t_ic)) * |sigmoid(s_ic) -
    sigmoid(t_ic)|^beta``, one value per location, then mmdet's ``weight``
    and ``avg_factor`` (CrossKD weighs by the label weights and divides by
    the positives, as the head's own Quality Focal Loss). This is the
    ``KDQualityFocalLoss`` of the official CrossKD code
    (jbwang1997/CrossKD), summed over classes before weighting, which is
    the same as its per-class weight.

    Args:
        beta (float): Focusing exponent. Defaults to 1.0.
        reduction (str): 'none', 'mean' or 'sum' over the locations.
            Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> s, t = torch.zeros(1, 2), torch.zeros(1, 2)  # equal: no focus
        >>> float(KDQualityFocalLoss()(s, t))
        0.0
    """

    compares_distributions = True  # per-class scores: no adapter

    def __init__(self,
                 beta: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.beta = beta

    def elementwise(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """Focused BCE of each location, summed over the classes."""
        if logits_s.shape != logits_t.shape:
            raise ValueError(
                'KDQualityFocalLoss expects student and teacher logits of '
                f'one shape, got {tuple(logits_s.shape)} and '
                f'{tuple(logits_t.shape)}')
        target = logits_t.sigmoid()
        bce = F.binary_cross_entropy_with_logits(
            logits_s, target, reduction='none')
        focus = (logits_s.sigmoid() - target).abs().pow(self.beta)
        return (bce * focus).sum(dim=1)
