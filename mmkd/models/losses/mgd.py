"""Masked generative distillation (MGD; Yang et al., ECCV 2022)."""
from typing import Optional

import torch
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import DistillLoss, TeacherWidth


@MODELS.register_module()
class MGDLoss(TeacherWidth, DistillLoss):
    """Generate the teacher's feature map from a randomly masked student map.

    At every step a random spatial mask drops each position of the (adapted)
    student map with probability ``lambda_mgd``; a generation block (3x3
    conv, ReLU, 3x3 conv, at the teacher's width) must rebuild the whole
    teacher map from what is left:

    ``loss = loss_weight * sum_{n,c,h,w} (G(M * feat_s) - feat_t)^2 / N``,

    the loss of `Masked Generative Distillation
    <https://arxiv.org/abs/2205.01529>`_ (Yang et al., ECCV 2022) as its
    official code (yzd-v/MGD, ``FeatureLoss``) computes it: summed over
    channels and positions, averaged over images, ``loss_weight`` being
    ``alpha_mgd`` (2e-5 in every official config). The generation block
    belongs to the loss, is trained with the student and is dropped on
    export; one loss entry per feature map, as the official configs give
    each FPN level its own block. The official ``align`` 1x1 conv, used when
    the widths differ, is mmkd's adapter (``adapter='auto'``).

    The mask is drawn from torch's global generator, so a run is repeatable
    for a seed and resumes exactly (the RNG state is checkpointed).

    Args:
        channels (int, optional): The teacher map's channels (the generation
            block's width). In a distiller, None (the default) takes them
            from the teacher's map at build time.
        lambda_mgd (float): Probability of masking a position, in [0, 1):
            0.65 for detection, 0.75 for segmentation officially. Defaults
            to 0.65.
        reduction (str): 'none' (one value per image), 'mean' or 'sum'.
            Defaults to 'mean'.
        loss_weight (float): Weight of the loss (``alpha_mgd``). Defaults to
            2e-5.

    Example:
        >>> import torch
        >>> loss = MGDLoss(channels=4, lambda_mgd=0.5)
        >>> s, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
        >>> loss(s, t).shape
        torch.Size([])
    """

    def __init__(self,
                 channels: Optional[int] = None,
                 lambda_mgd: float = 0.65,
                 reduction: str = 'mean',
                 loss_weight: float = 2e-5) -> None:
        super().__init__(reduction, loss_weight)
        if not 0 <= lambda_mgd < 1:
            raise ValueError('lambda_mgd is the probability of masking a '
                             f'position, in [0, 1); got {lambda_mgd!r}')
        self.lambda_mgd = lambda_mgd
        self.channels = None
        self.generation = None
        if channels is not None:
            self.set_channels(channels)

    def build_layers(self, channels: int) -> None:
        """The generation block at the teacher's width."""
        self.generation = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1))

    def elementwise(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """The squared error of the generated map, summed per image."""
        self.check_maps(feat_s, feat_t)
        n, _, h, w = feat_t.shape
        # keep a position with probability 1 - lambda_mgd
        keep = torch.rand(n, 1, h, w, device=feat_s.device) <= \
            1 - self.lambda_mgd
        generated = self.generation(feat_s * keep.to(feat_s.dtype))
        return ((generated - feat_t)**2).flatten(1).sum(dim=1)
