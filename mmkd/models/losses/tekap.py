"""Teacher knowledge augmentation with perturbed views, TeKAP (ICLR 2025)."""
from typing import Optional, Union

import torch
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import Features

#: The paper's two presets, by the kind of tensor a loss compares.
PRESETS = dict(
    logits=dict(num_views=3, alpha=0.1, noise_std=1.0, view_weight=0.8),
    features=dict(
        num_views=1, alpha=0.1, noise_std=0.1, view_weight=1.0,
        keep_norm=True))
#: Losses of other libraries that compare logits.
OTHER_LOGIT_LOSSES = ('KnowledgeDistillationKLDivLoss', )


def tekap_preset(loss_type: type) -> Optional[dict]:
    """The TeKAP settings for a loss class, or None where TeKAP does not
    apply: the class says which tensors it compares with its
    ``tekap_preset`` attribute (``'logits'`` or ``'features'``).

    Example:
        >>> from mmkd.models import FeatureHintLoss, LDLoss
        >>> tekap_preset(FeatureHintLoss)['keep_norm'], tekap_preset(LDLoss)
        (True, None)
    """
    kind = getattr(loss_type, 'tekap_preset', None)
    if kind is None and loss_type.__name__ in OTHER_LOGIT_LOSSES:
        kind = 'logits'
    return None if kind is None else dict(PRESETS[kind])


@MODELS.register_module()
class TeKAP(nn.Module):
    """Add the wrapped loss against noisy views of the teacher to the loss
    against the clean teacher.

    ``loss = L(x_s, x_t) + view_weight * sum_{i=1..num_views} L(x_s,
    (1 - alpha) * x_t + alpha * eps_i)`` with ``eps_i ~ N(0, noise_std^2)``:
    `Single Teacher, Multiple Perspectives: Teacher Knowledge Augmentation for
    Enhanced Knowledge Distillation
    <https://openreview.net/forum?id=DmEHmZ89iB>`_
    (Hossain et al., ICLR 2025; official code `mdimtiazh/TeKAP
    <https://github.com/mdimtiazh/TeKAP>`_). ``L`` is any registered
    distillation loss, built from its config; extra arguments of ``forward``
    (labels, centroids, ...) are passed to it unchanged.

    The paper's two presets:

    - logits (the defaults): ``alpha=0.1, noise_std=1.0, num_views=3,
      view_weight=0.8``, as in the official ``DistillKL``;
    - features: ``alpha=0.1, noise_std=0.1, num_views=1``; the official CRD
      code adds that view's loss unweighted (``view_weight=1.0``).

    Officially the feature view exists only inside CRD, whose embedding
    L2-normalises it: there the noise turns the teacher's direction and the
    ``1 - alpha`` shrink vanishes. Under a loss that compares magnitudes (an
    MSE hint) the same view is a biased target, ``~0.9 * t``, that pulls the
    student's features towards zero. ``keep_norm=True`` (the feature preset
    of mmkd's configs) rescales each sample's view, per level, to the clean
    teacher's L2 norm, so the view differs from the teacher in direction
    only, as CRD's normalised view does.

    Noise is drawn fresh on every call with torch's global RNG, on the
    teacher's device and dtype, one tensor per view and, for a sequence of
    levels, per level (views outer, levels inner). The teacher is detached
    before it is perturbed.

    Args:
        loss (dict | nn.Module): Config of the wrapped loss, built with
            ``MODELS`` in the ``mmkd`` scope (so ``'FeatureHintLoss'`` and
            ``'mmkd.FeatureHintLoss'`` both work), or a built loss module.
        num_views (int): Number of perturbed teacher views. Defaults to 3.
        alpha (float): Weight of the noise in each view. Defaults to 0.1.
        noise_std (float): Standard deviation of the Gaussian noise.
            Defaults to 1.0.
        view_weight (float): Weight of each perturbed view's loss.
            Defaults to 0.8.
        keep_norm (bool): Rescale each sample's view to the clean teacher's
            L2 norm. Defaults to False.

    Example:
        >>> import torch
        >>> loss = TeKAP(dict(type='FeatureHintLoss'), alpha=0.)
        >>> s, t = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
        >>> round(float(loss(s, t)), 4)  # no noise: (1 + 3 * 0.8) * 1
        3.4
        >>> _ = torch.manual_seed(0)
        >>> feat = TeKAP(dict(type='mmkd.FeatureHintLoss'), num_views=1,
        ...              noise_std=0.1)
        >>> # the view is ~0.9 * t: 1 + 0.8 * 0.9 ** 2 = 1.648
        >>> round(float(feat(s, t)), 2)
        1.65
        >>> feat.keep_norm = True  # the view keeps t's norm: 1 + 0.8 * ~1
        >>> round(float(feat(s, t)), 1)
        1.8
    """

    def __init__(self,
                 loss: Union[dict, nn.Module],
                 num_views: int = 3,
                 alpha: float = 0.1,
                 noise_std: float = 1.0,
                 view_weight: float = 0.8,
                 keep_norm: bool = False) -> None:
        super().__init__()
        if isinstance(num_views, bool) or not isinstance(num_views, int) \
                or num_views < 0:
            raise ValueError(
                f'num_views must be an integer >= 0, got num_views='
                f'{num_views!r}')
        if not 0. <= alpha <= 1.:
            raise ValueError(f'alpha must lie in [0, 1], got alpha={alpha!r}')
        if not noise_std >= 0.:
            raise ValueError(
                f'noise_std must be >= 0, got noise_std={noise_std!r}')
        if isinstance(loss, dict):
            with DefaultScope.overwrite_default_scope('mmkd'):
                loss = MODELS.build(loss)
        elif not isinstance(loss, nn.Module):
            raise TypeError(
                'loss must be a loss config (dict) or an nn.Module, got '
                f'{type(loss).__name__}')
        self.loss = loss
        self.num_views = num_views
        self.alpha = alpha
        self.noise_std = noise_std
        self.view_weight = view_weight
        if not isinstance(keep_norm, bool):
            raise ValueError(
                'keep_norm must be True or False, got '
                f'keep_norm={keep_norm!r}')
        self.keep_norm = keep_norm

    def perturb(self, x_t: Tensor) -> Tensor:
        """One view ``(1 - alpha) * x_t + alpha * eps``, eps drawn now."""
        x_t = x_t.detach()
        noise = torch.randn_like(x_t) * self.noise_std
        view = (1 - self.alpha) * x_t + self.alpha * noise
        if self.keep_norm and x_t.dim() > 1:
            dims = tuple(range(1, x_t.dim()))
            norm_t = torch.linalg.vector_norm(x_t, dim=dims, keepdim=True)
            norm_v = torch.linalg.vector_norm(view, dim=dims, keepdim=True)
            view = view * (norm_t / norm_v.clamp(min=1e-12))
        return view

    def forward(self, x_s: Features, x_t: Features, *args, **kwargs) -> Tensor:
        """Wrapped loss on the clean teacher plus on every perturbed view."""
        loss = self.loss(x_s, x_t, *args, **kwargs)
        for _ in range(self.num_views):
            if isinstance(x_t, Tensor):
                view = self.perturb(x_t)
            else:
                view = type(x_t)(self.perturb(t) for t in x_t)
            loss = loss + self.view_weight * self.loss(x_s, view, *args, **
                                                       kwargs)
        return loss
