"""Soft-label classification distillation for sigmoid (one-stage) heads."""
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_temperature


@MODELS.register_module()
class SigmoidSoftCELoss(DistillLoss):
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
        reduction (str): 'none', 'mean' or 'sum' over the locations
            (mmdet's ``weight``, ``avg_factor`` and ``reduction_override``
            apply, see :class:`DistillLoss`). Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = SigmoidSoftCELoss()
        >>> z = torch.zeros(1, 2, 1, 1)  # p = 0.5 everywhere: 2 * log(2)
        >>> round(float(loss(z, z)), 4)
        1.3863
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

    def elementwise(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """Binary soft CE of each location, summed over the classes."""
        if logits_s.shape != logits_t.shape:
            raise ValueError(
                f'student logits {tuple(logits_s.shape)} and teacher logits '
                f'{tuple(logits_t.shape)} differ; both heads need the same '
                'anchors and classes')
        p_t = (logits_t / self.temperature).sigmoid()
        bce = F.binary_cross_entropy_with_logits(
            logits_s / self.temperature, p_t, reduction='none')
        return bce.sum(1)
