"""Class-weighted soft-label classification distillation (Chen et al.)."""
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_temperature


def _flatten_logits(logits: Tensor) -> Tensor:
    """(N, C+1) stays; (N, C+1, *spatial) becomes (N * prod(spatial), C+1)."""
    if logits.dim() < 2:
        raise ValueError(
            'soft-label KD expects logits of shape (N, C+1) or (N, C+1, H, '
            f'W), got shape {tuple(logits.shape)}')
    if logits.dim() == 2:
        return logits
    return logits.movedim(1, -1).reshape(-1, logits.shape[1])


@MODELS.register_module()
class WeightedSoftCELoss(DistillLoss):
    """Cross-entropy from the teacher's softened scores, background upweighted.

    ``loss = loss_weight * sum_levels mean_i(-sum_c w_c p_t,c log p_s,c)`` with
    ``p = softmax(z / T)`` and ``w_c = bg_weight`` for the background class,
    1 for the others: the soft term ``L_soft`` of `Learning Efficient Object
    Detection Models with Knowledge Distillation
    <https://papers.nips.cc/paper/6676>`_ (Chen et al., NeurIPS 2017), whose
    background weight of 1.5 counters the imbalance of background proposals.
    The hard-label term ``mu * CE(z_s, y)`` stays the student's own loss; set
    ``loss_weight = 1 - mu`` to weight the soft term as in the paper.

    The background is the **last** column, mmdet's convention
    (``num_classes + 1`` logits). Logits are ``(N, C+1)`` (RoI heads), or
    dense ``(N, C+1, H, W)`` one-stage/RPN outputs, whose class dimension is
    moved last and every location becomes one sample. A sequence of tensors is
    one input per level (FPN); the loss is summed over levels. No ``T ** 2``
    factor is applied (Chen et al. use none); the teacher is detached.

    Chen et al. have no official code; the choices made here: the mean is
    over the rows given, which with :class:`mmkd.models.RoIPairing` /
    :class:`mmkd.models.RPNPairing` are the student's sampled RoIs / anchors,
    the same ``N`` as mmdet's own cross-entropy (``avg_factor`` = sampled
    count), so ``mu * CE + (1 - mu) * L_soft`` is the paper's ``L_cls``
    averaged over ``N``. ``T = 1`` by default, as the paper found no
    temperature best for detection. Dense maps average over every location,
    not a sample of them, and several levels are summed: both are
    extensions.

    Args:
        temperature (float): Softmax temperature ``T`` of both sides.
            Defaults to 1.0.
        bg_weight (float): Weight ``w`` of the background (last) class.
            Defaults to 1.5.
        reduction (str): 'none', 'mean' or 'sum' over the samples (mmdet's
            ``weight``, ``avg_factor`` and ``reduction_override`` apply, see
            :class:`DistillLoss`). Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = WeightedSoftCELoss(bg_weight=2.0)
        >>> z_s = torch.zeros(2, 2)  # p_s = (0.5, 0.5) for each sample
        >>> z_t = torch.tensor([[100., 0.], [0., 100.]])  # fg, then bg
        >>> # per sample: -1 * log 0.5 and -2 * log 0.5; mean = 1.5 * log 2
        >>> round(float(loss(z_s, z_t)), 4)
        1.0397
        >>> loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)).shape
        torch.Size([])
    """

    compares_distributions = True  # no adapter; counts must match

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'logits'

    def __init__(self,
                 temperature: float = 1.0,
                 bg_weight: float = 1.5,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.temperature = check_temperature(temperature)
        self.bg_weight = bg_weight

    def soft_cross_entropy(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """Per-sample ``-sum_c w_c p_t,c log p_s,c`` of (N, C+1) logits."""
        log_p_s = F.log_softmax(logits_s / self.temperature, dim=1)
        p_t = F.softmax(
            logits_t.detach().to(logits_s.dtype) / self.temperature, dim=1)
        weight = log_p_s.new_ones(log_p_s.shape[1])
        weight[-1] = self.bg_weight
        return -(weight * p_t * log_p_s).sum(dim=1)

    def elementwise(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """The soft CE of each sample (RoI, or location of a map)."""
        if logits_s.shape != logits_t.shape:
            if logits_s.dim() >= 2 and logits_t.dim() >= 2 and (
                    logits_s.shape[1] != logits_t.shape[1]):
                raise ValueError(
                    f'student logits have {logits_s.shape[1]} classes but '
                    f'teacher logits have {logits_t.shape[1]} (C+1 each, '
                    'background last): both heads must predict the same '
                    'classes')
            raise ValueError(
                f'student logits {tuple(logits_s.shape)} and teacher '
                f'logits {tuple(logits_t.shape)} differ in shape')
        return self.soft_cross_entropy(
            _flatten_logits(logits_s), _flatten_logits(logits_t))
