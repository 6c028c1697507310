"""DIST: inter- and intra-class relations (Huang et al., NeurIPS 2022)."""
from torch import Tensor

from mmkd.registry import MODELS
from .utils import DistillLoss, check_temperature


def pearson_rows(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation of each row of ``x`` with the same row of ``y``:
    the cosine of the mean-centred rows, with ``eps`` added to the product
    of norms as in DIST's official code.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1., 2., 3.], [1., 2., 3.]])
        >>> y = torch.tensor([[2., 4., 6.], [3., 2., 1.]])
        >>> [round(v, 4) for v in pearson_rows(x, y).tolist()]
        [1.0, -1.0]
    """
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.norm(dim=1) * y.norm(dim=1) + eps)


@MODELS.register_module()
class DISTLoss(DistillLoss):
    """Match the teacher's class relations, not its probabilities.

    With ``Y_s, Y_t`` the ``(M, K)`` class probabilities of ``M`` samples
    (``softmax(z / tau)``; every pixel of every image is a sample for
    ``(N, K, H, W)`` segmentation logits),

    ``loss = loss_weight * tau^2 * (beta * (1 - mean_rows r(Y_s, Y_t))
    + gamma * (1 - mean_cols r(Y_s, Y_t)))``

    where ``r`` is the Pearson correlation: the inter-class term correlates
    each sample's class scores, the intra-class term each class's scores
    across the samples. This is the loss of `Knowledge Distillation from A
    Stronger Teacher <https://arxiv.org/abs/2205.10536>`_ (Huang et al.,
    NeurIPS 2022) as its official code (hunto/DIST_KD, ``DIST``) computes
    it: ``tau = 1, beta = gamma = 1`` for segmentation (where its code has
    no temperature), ``use_sigmoid`` for sigmoid classifiers. The
    temperature and its ``tau^2`` factor are those of the classification
    loss (mmrazor's ``DISTLoss``); at ``tau = 1`` both agree.

    The loss is one number per level (a relation, not an element-wise
    term, ``per_map``), so ``weight`` and ``avg_factor`` do not apply; levels
    are summed.

    Args:
        beta (float): Weight of the inter-class term. Defaults to 1.0.
        gamma (float): Weight of the intra-class term. Defaults to 1.0.
        tau (float): Temperature. Defaults to 1.0.
        use_sigmoid (bool): Sigmoid instead of softmax probabilities.
            Defaults to False.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> import torch
        >>> z = torch.tensor([[2., 0., 0.], [0., 2., 0.], [0., 0., 2.]])
        >>> float(DISTLoss()(z, z)) < 1e-6     # same relations
        True
        >>> float(DISTLoss()(z, -z)) > 3.9     # reversed: r = -1 everywhere
        True
    """

    #: TeKAP's preset for this loss (tools/benchmark_methods.py --tekap)
    tekap_preset = 'logits'
    #: dim 1 holds classes: the distiller never puts an adapter before it
    compares_distributions = True
    per_map = True

    def __init__(self,
                 beta: float = 1.0,
                 gamma: float = 1.0,
                 tau: float = 1.0,
                 use_sigmoid: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__('mean', loss_weight)
        self.beta = beta
        self.gamma = gamma
        self.tau = check_temperature(tau, 'tau')
        self.use_sigmoid = use_sigmoid

    def _probs(self, logits: Tensor) -> Tensor:
        if logits.dim() == 4:  # every pixel is a sample
            logits = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        elif logits.dim() != 2:
            raise ValueError('DISTLoss expects (M, K) or (N, K, H, W) '
                             f'logits, got {tuple(logits.shape)}')
        logits = logits / self.tau
        return logits.sigmoid() if self.use_sigmoid else logits.softmax(1)

    def elementwise(self, pred_s: Tensor, pred_t: Tensor) -> Tensor:
        """The level's ``tau^2 (beta * inter + gamma * intra)``, a scalar."""
        if pred_s.shape != pred_t.shape:
            raise ValueError(
                'DISTLoss expects student and teacher logits of one shape, '
                f'got {tuple(pred_s.shape)} and {tuple(pred_t.shape)}')
        y_s, y_t = self._probs(pred_s), self._probs(pred_t)
        if y_s.numel() == 0:  # no samples: the base class gives a zero
            return y_s.new_zeros(0)
        inter = 1 - pearson_rows(y_s, y_t).mean()
        intra = 1 - pearson_rows(y_s.t(), y_t.t()).mean()
        return self.tau**2 * (self.beta * inter + self.gamma * intra)
