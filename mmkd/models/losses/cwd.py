"""Channel-wise distillation (CWD; Shu et al., ICCV 2021)."""
import torch.nn.functional as F
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_temperature


@MODELS.register_module()
class ChannelWiseDivergence(DistillLoss):
    """KL divergence between the teacher's and the student's per-channel
    spatial distributions.

    Each channel of an ``(N, C, H, W)`` map is turned into a distribution
    over its ``H * W`` positions by a softmax at temperature ``tau``, and

    ``loss = loss_weight * tau^2 / (N C) * sum_{n,c} KL(p_t^nc || p_s^nc)``,

    the loss of `Channel-wise Knowledge Distillation for Dense Prediction
    <https://arxiv.org/abs/2011.13256>`_ (Shu et al., ICCV 2021), as
    mmrazor's ``ChannelWiseDivergence`` computes it (summed over positions,
    averaged over images and channels). It applies to logits (a
    segmentor's ``decode_head.conv_seg``, a dense head's classification
    map) and to features (an FPN's levels, summed over levels). Student and
    teacher must have the same channels, after an adapter where they differ
    (``adapter=True`` in the loss entry), and the same spatial size.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        reduction (str): 'none' (one value per image and channel), 'mean'
            or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> s = torch.zeros(1, 1, 1, 2)            # uniform: [0.5, 0.5]
        >>> t = torch.tensor([[[[0., 100.]]]])      # one-hot: [0, 1]
        >>> round(float(ChannelWiseDivergence()(s, t)), 4)  # log 2
        0.6931
    """

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'logits'

    def __init__(self,
                 tau: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.tau = check_temperature(tau, 'tau')

    def elementwise(self, pred_s: Tensor, pred_t: Tensor) -> Tensor:
        """``tau^2 KL(p_t || p_s)`` of each (image, channel): shape (N, C)."""
        if pred_s.dim() != 4 or pred_s.shape != pred_t.shape:
            raise ValueError(
                'ChannelWiseDivergence expects student and teacher maps of '
                f'one shape (N, C, H, W), got {tuple(pred_s.shape)} and '
                f'{tuple(pred_t.shape)}: set adapter=True in the loss entry '
                'when the channels differ')
        n, c = pred_s.shape[:2]
        log_p_s = F.log_softmax(pred_s.reshape(n, c, -1) / self.tau, dim=2)
        log_p_t = F.log_softmax(pred_t.reshape(n, c, -1) / self.tau, dim=2)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=2)
        return kl * self.tau**2
