"""MobileBERT's layer-wise transfer: feature maps and attention maps
(Sun et al., ACL 2020), for transformer backbones (Swin, SegFormer's MiT)."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Size, Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_reduction

HEAD_REDUCTIONS = (None, 'mean')


def _channels_last(feat: Tensor) -> Tensor:
    """``(B, L, C)`` tokens as they are; ``(N, C, H, W)`` maps and ``(N, C)``
    rows with their channels moved last."""
    if feat.dim() == 3:
        return feat
    return feat.movedim(1, -1)


@MODELS.register_module()
class FeatureMapTransferLoss(DistillLoss):
    """MobileBERT's feature-map transfer on token sequences or maps.

    Per token (or per position of a map), over its ``C`` channels:

    ``mse_weight * mean_c (LN(s) - LN(t))^2
    + mean_weight * (mu_s - mu_t)^2 + var_weight * |var_s - var_t|``,

    averaged over the tokens (and the batch) and times ``loss_weight``, where
    ``LN`` is a layer norm without parameters (eps 1e-12) and ``mu``/``var``
    the channels' mean and (biased) variance.

    This is the official code's layer-wise loss (google-research
    ``mobilebert/run_pretraining.py``: ``hidden_distill_factor`` 100 on the
    normalised MSE, ``beta_distill_factor`` 5000 on the means,
    ``gamma_distill_factor`` 5 on the variances, MSE averaged over every
    element). The paper (Eq. 1) writes the MSE alone; set ``mean_weight``
    and ``var_weight`` to 0 for that. When the student is narrower, the
    distiller's adapter maps its channels linearly to the teacher's first
    (MobileBERT's teacher and student share a width). The official code
    averages over the transferred layers; here each layer pair is one loss
    (or one level of a loss), and levels are summed, so weight them as the
    official ``1 / num_layers`` does where that matters.

    Args:
        mse_weight (float): Weight of the normalised MSE. Defaults to 100.
        mean_weight (float): Weight of the squared mean difference.
            Defaults to 5000.
        var_weight (float): Weight of the absolute variance difference.
            Defaults to 5.
        reduction (str): 'none', 'mean' or 'sum' over the tokens.
            Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = FeatureMapTransferLoss(mean_weight=0., var_weight=0.)
        >>> s = torch.tensor([[[1., -1.]]])  # (B, L, C): one token
        >>> round(float(loss(s, -s)), 3)  # LN: (1, -1) against (-1, 1)
        400.0
        >>> round(float(loss(s, 2 * s)), 3)  # equal after normalisation
        0.0
    """

    def __init__(self,
                 mse_weight: float = 100.0,
                 mean_weight: float = 5000.0,
                 var_weight: float = 5.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        for name, value in (('mse_weight', mse_weight),
                            ('mean_weight', mean_weight),
                            ('var_weight', var_weight)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f'{name} must be a number >= 0, got {name}={value!r}')
        self.mse_weight = mse_weight
        self.mean_weight = mean_weight
        self.var_weight = var_weight

    def elementwise(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """The loss of every token, ``(B, L)`` (``(N, H, W)`` for maps)."""
        if feat_s.shape != feat_t.shape:
            raise ValueError(
                f'FeatureMapTransferLoss compares equal shapes, got student '
                f'{tuple(feat_s.shape)} and teacher {tuple(feat_t.shape)}: '
                'adapt the student to the teacher\'s width')
        feat_s, feat_t = _channels_last(feat_s), _channels_last(feat_t)
        width = feat_s.shape[-1:]
        loss = self.mse_weight * (
            F.layer_norm(feat_s, width, eps=1e-12) -
            F.layer_norm(feat_t, width, eps=1e-12)).pow(2).mean(-1)
        if self.mean_weight or self.var_weight:
            var_s, mean_s = torch.var_mean(feat_s, dim=-1, unbiased=False)
            var_t, mean_t = torch.var_mean(feat_t, dim=-1, unbiased=False)
            loss = loss + self.mean_weight * (mean_s - mean_t).pow(2)
            loss = loss + self.var_weight * (var_s - var_t).abs()
        return loss


@MODELS.register_module()
class AttentionTransferLoss(DistillLoss):
    """MobileBERT's attention transfer: ``KL(A_t || A_s)`` of each query's
    attention distribution over the keys, averaged over batch, heads and
    queries (Sun et al., ACL 2020, Eq. 2), times ``loss_weight``.

    It takes attention probabilities as the models compute them (the last
    dimension is the distribution over keys):

    - ``(B, heads, queries, keys)`` per head, e.g. the output of the
      ``nn.Softmax`` of a Swin ``WindowMSA`` (``...attn.w_msa.softmax``),
      where ``B`` counts windows, so windows are compared one by one;
    - ``(B, queries, keys)`` averaged over heads, as ``nn.MultiheadAttention``
      returns them second (SegFormer's ``...attn.attn[1]``).

    Both sides must have the same shape, checked when the distiller is
    built. Different head counts are an error unless ``head_reduce='mean'``,
    which averages each side's heads before the comparison.

    The official code (google-research ``mobilebert/run_pretraining.py``,
    ``attention_distill_factor`` 1) takes the cross-entropy
    ``-sum_k A_t log A_s`` on the attention logits; it differs from this KL
    by the teacher's entropy, a constant for the student, so the gradients
    are the same, and the KL is 0 where the maps agree. Probabilities are
    clamped at ``eps`` before the log. As for every mmkd loss, levels (layer
    pairs) are summed; the official code averages over layers.

    Args:
        head_reduce (str, optional): None to compare head by head, 'mean' to
            average the heads first. Defaults to None.
        eps (float): Floor of the probabilities under the log.
            Defaults to 1e-8.
        reduction (str): 'none', 'mean' or 'sum' over batch, heads and
            queries. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> loss = AttentionTransferLoss()
        >>> a_t = torch.tensor([[[0.5, 0.5]]])  # (B, queries, keys)
        >>> a_s = torch.tensor([[[1.0, 0.0]]]).clamp(min=1e-8)
        >>> # 0.5 log(0.5 / 1) + 0.5 log(0.5 / 1e-8)
        >>> round(float(loss(a_s, a_t)), 4)
        8.5172
        >>> float(loss(a_t, a_t))
        0.0
    """

    compares_distributions = True

    def __init__(self,
                 head_reduce: Optional[str] = None,
                 eps: float = 1e-8,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.head_reduce = check_reduction(head_reduce, 'head_reduce',
                                           HEAD_REDUCTIONS)
        if not isinstance(eps, float) or not 0 < eps < 1:
            raise ValueError(f'eps must be a float in (0, 1), got eps={eps!r}')
        self.eps = eps

    def _reduced(self, shape: Size) -> tuple:
        if self.head_reduce == 'mean' and len(shape) == 4:
            return (shape[0], *shape[2:])
        return tuple(shape)

    def check_shapes(self, shapes_s: Sequence[Size],
                     shapes_t: Sequence[Size], key: str) -> None:
        """Refuse attention maps that cannot be compared, naming ``key``."""
        for shape_s, shape_t in zip(shapes_s, shapes_t):
            if len(shape_s) not in (3, 4) or len(shape_t) not in (3, 4):
                raise ValueError(
                    f'{key}: AttentionTransferLoss takes attention maps '
                    '(B, heads, queries, keys) or (B, queries, keys), got '
                    f'student {tuple(shape_s)} and teacher {tuple(shape_t)}; '
                    'tap the softmax of an attention (Swin: '
                    "'...attn.w_msa.softmax') or the weights of an "
                    "nn.MultiheadAttention ('...attn.attn[1]')")
            if self._reduced(shape_s) == self._reduced(shape_t):
                continue
            heads = (len(shape_s) == len(shape_t) == 4
                     and shape_s[1] != shape_t[1] and self._reduced(
                         shape_s)[::2] == self._reduced(shape_t)[::2])
            hint = ("; or set head_reduce='mean' to average each side's "
                    'heads' if heads and self.head_reduce is None else '')
            raise ValueError(
                f'{key}: the student\'s attention maps are {tuple(shape_s)} '
                f'and the teacher\'s {tuple(shape_t)}; attention transfer '
                'compares maps of one shape (heads, queries and keys): tap '
                'layers with as many heads and tokens (the same input size '
                f'and window size){hint}')

    def elementwise(self, attn_s: Tensor, attn_t: Tensor) -> Tensor:
        """``KL(A_t || A_s)`` of every query, ``(B, heads, queries)``."""
        if self.head_reduce == 'mean' and attn_s.dim() == 4:
            attn_s, attn_t = attn_s.mean(1), attn_t.mean(1)
        if attn_s.shape != attn_t.shape:
            raise ValueError(
                f'AttentionTransferLoss compares maps of one shape, got '
                f'student {tuple(attn_s.shape)} and teacher '
                f'{tuple(attn_t.shape)}')
        log_s = attn_s.clamp(min=self.eps).log()
        log_t = attn_t.clamp(min=self.eps).log()
        return (attn_t * (log_t - log_s)).sum(-1)
