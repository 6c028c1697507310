"""Pearson-correlation feature distillation (PKD; Cao et al., NeurIPS
2022)."""
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss


def channel_standardize(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """``feat`` with each channel at zero mean and unit (unbiased) standard
    deviation over the batch and the positions; ``eps`` is added to the
    standard deviation, as in PKD's official code.

    Example:
        >>> import torch
        >>> out = channel_standardize(torch.tensor([[[[1., 3.]]]]))
        >>> [round(v, 4) for v in out.flatten().tolist()]
        [-0.7071, 0.7071]
    """
    dims = [0, *range(2, feat.dim())]
    mean = feat.mean(dim=dims, keepdim=True)
    std = feat.std(dim=dims, keepdim=True)
    return (feat - mean) / (std + eps)


@MODELS.register_module()
class PKDLoss(DistillLoss):
    """Mean squared error between channel-standardised student and teacher
    features, i.e. ``1 - r`` of their Pearson correlation.

    ``loss = loss_weight * sum_levels mean((z(feat_s) - z(feat_t))^2) / 2``,
    where ``z`` standardises each channel over the batch and the positions
    (:func:`channel_standardize`): the loss of `PKD: General Distillation
    Framework for Object Detectors via Pearson Correlation Coefficient
    <https://arxiv.org/abs/2207.02039>`_ (Cao et al., NeurIPS 2022), as its
    official implementation in mmrazor (``PKDLoss``) computes it. Because the
    features are standardised, the loss ignores each channel's scale and
    offset, which makes it safe between heterogeneous detectors (e.g. an
    FCOS teacher and a RetinaNet student). The student is standardised with
    its gradient, as in the official code.

    Where the spatial sizes differ, the student's map is resized to the
    teacher's (bilinear, ``resize_stu=True``) or the teacher's to the
    student's. The channels must match (after an adapter where they differ).

    Args:
        resize_stu (bool): Resize the student's map to the teacher's size,
            else the teacher's to the student's. Defaults to True.
        reduction (str): 'none', 'mean' or 'sum' over each level's elements.
            Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> s = torch.tensor([[[[1., 2.]]], [[[3., 4.]]]])
        >>> # any positive affine map of the student is a perfect match
        >>> float(PKDLoss()(s, 10 * s + 3)) < 1e-10
        True
        >>> round(float(PKDLoss()(s, -s)), 4)   # r = -1: (1 - r) * 3/4
        1.5
    """

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'features'

    def __init__(self,
                 resize_stu: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.resize_stu = resize_stu

    def elementwise(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Half the squared difference of the standardised maps."""
        if feat_s.dim() != 4 or feat_t.dim() != 4:
            raise ValueError(
                'PKDLoss expects (N, C, H, W) maps, got '
                f'{tuple(feat_s.shape)} and {tuple(feat_t.shape)}')
        if feat_s.shape[2:] != feat_t.shape[2:]:
            if self.resize_stu:
                feat_s = F.interpolate(
                    feat_s, feat_t.shape[2:], mode='bilinear')
            else:
                feat_t = F.interpolate(
                    feat_t, feat_s.shape[2:], mode='bilinear')
        if feat_s.shape != feat_t.shape:
            raise ValueError(
                f'PKDLoss needs the student\'s {feat_s.shape[1]} channels to '
                f'match the teacher\'s {feat_t.shape[1]}: set adapter=True in '
                'the loss entry')
        diff = channel_standardize(feat_s) - channel_standardize(feat_t)
        return diff**2 / 2
