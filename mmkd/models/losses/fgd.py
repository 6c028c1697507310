"""Focal and global distillation (FGD; Yang et al., CVPR 2022)."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import constant_init, kaiming_init
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import DistillLoss, TeacherWidth


def attention(feat: Tensor, temp: float):
    """FGD's spatial ``(N, H, W)`` and channel ``(N, C)`` attention of a
    map: ``H W softmax(mean_c |F| / T)`` and ``C softmax(mean_hw |F| / T)``.
    """
    n, c, h, w = feat.shape
    value = feat.abs()
    spatial = h * w * F.softmax(
        (value.mean(dim=1) / temp).reshape(n, -1), dim=1).reshape(n, h, w)
    channel = c * F.softmax(value.mean(dim=(2, 3)) / temp, dim=1)
    return spatial, channel


def box_masks(boxes: Sequence[Tensor], img_shapes: Sequence[tuple],
              size: tuple, device) -> (Tensor, Tensor):
    """FGD's foreground and background masks, ``(N, H, W)`` each.

    Each ground-truth box, scaled from its image's ``img_shape`` to the
    map's ``size`` and widened to whole cells, marks its cells with
    ``1 / (its cell count)`` (the largest value where boxes overlap); the
    background mask is 1 on the other cells, divided by their number.
    """
    h, w = size
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    fg, bg = [], []
    for bboxes, (img_h, img_w) in zip(boxes, img_shapes):
        bboxes = bboxes.to(device=device, dtype=torch.float32)
        x1 = torch.floor(bboxes[:, 0] / img_w * w).view(-1, 1, 1)
        x2 = torch.ceil(bboxes[:, 2] / img_w * w).view(-1, 1, 1)
        y1 = torch.floor(bboxes[:, 1] / img_h * h).view(-1, 1, 1)
        y2 = torch.ceil(bboxes[:, 3] / img_h * h).view(-1, 1, 1)
        area = 1.0 / (y2 + 1 - y1) / (x2 + 1 - x1)
        inside = (rows >= y1) & (rows <= y2) & (cols >= x1) & (cols <= x2)
        mask = (inside * area).amax(dim=0) if len(bboxes) else \
            torch.zeros(h, w, device=device)
        back = (mask <= 0).float()
        back = back / back.sum().clamp(min=1)  # no host sync on CUDA
        fg.append(mask)
        bg.append(back)
    return torch.stack(fg), torch.stack(bg)


@MODELS.register_module()
class FGDLoss(TeacherWidth, DistillLoss):
    """Focal (foreground/background, attention-weighted) and global
    (GcBlock relation) distillation of one feature map.

    With the teacher's spatial and channel attention ``A_s, A_c``
    (:func:`attention`, temperature ``temp``) and the box masks ``M, B`` of
    :func:`box_masks`, summed over channels and cells and averaged over
    images:

    - ``fg = sum M A_s A_c (F_s - F_t)^2``, ``bg`` the same with ``B``;
    - ``mask = sum |A_c^t - A_c^s| + sum |A_s^t - A_s^s|``, both sides'
      attention;
    - ``rela = sum (F_s + G_s(F_s) - F_t - G_t(F_t))^2`` where ``G_s, G_t``
      are two GcBlock context branches trained with the student;

    ``loss = loss_weight * (alpha fg + beta bg + gamma mask + lambda rela)``.

    This is the loss of `Focal and Global Knowledge Distillation for
    Detectors <https://arxiv.org/abs/2111.11837>`_ (Yang et al., CVPR 2022)
    as its official code (yzd-v/FGD, ``FeatureLoss``) computes it, with one
    departure taken from mmrazor's port (``FGDLoss``): the official code
    fills the box masks with rows and columns swapped (``mask[x1:x2,
    y1:y2]``), which marks the transposed region, clipped to the map; here,
    as in mmrazor, a box marks its own cells. The boxes are scaled by each
    image's ``img_shape``, as officially (mmdet pads the batch below and to
    the right, so this is the unpadded image).

    Its inputs are the ground-truth boxes and the data samples (for
    ``img_shape``): ``inputs=dict(gt_bboxes='batch.gt_bboxes',
    data_samples='batch.data_samples')``. One loss entry per feature map,
    as the official configs give each FPN level its own GcBlocks; the
    official ``align`` 1x1 conv, used when the widths differ, is mmkd's
    adapter. The result is one number per map (``per_map``), so ``weight``
    and ``avg_factor`` do not apply.

    Args:
        channels (int, optional): The teacher map's channels (the GcBlocks'
            width). In a distiller, None (the default) takes them from the
            teacher's map at build time.
        temp (float): Attention temperature. Defaults to 0.5.
        alpha_fgd (float): Foreground weight. Defaults to 0.001.
        beta_fgd (float): Background weight. Defaults to 0.0005.
        gamma_fgd (float): Attention (mask) weight. Defaults to 0.001.
        lambda_fgd (float): Relation weight. Defaults to 0.000005.
        loss_weight (float): Weight of the whole loss. Defaults to 1.0.
    """

    #: the context branches halve the width
    min_channels = 2
    per_map = True

    def __init__(self,
                 channels: Optional[int] = None,
                 temp: float = 0.5,
                 alpha_fgd: float = 0.001,
                 beta_fgd: float = 0.0005,
                 gamma_fgd: float = 0.001,
                 lambda_fgd: float = 0.000005,
                 loss_weight: float = 1.0) -> None:
        super().__init__('mean', loss_weight)
        if not temp > 0:
            raise ValueError(f'temp must be > 0, got temp={temp!r}')
        self.temp = temp
        self.alpha_fgd, self.beta_fgd = alpha_fgd, beta_fgd
        self.gamma_fgd, self.lambda_fgd = gamma_fgd, lambda_fgd
        self.channels = None
        if channels is not None:
            self.set_channels(channels)

    def build_layers(self, channels: int) -> None:
        """The GcBlock branches at the teacher's width."""

        def context():
            return nn.Sequential(
                nn.Conv2d(channels, channels // 2, kernel_size=1),
                nn.LayerNorm([channels // 2, 1, 1]), nn.ReLU(inplace=True),
                nn.Conv2d(channels // 2, channels, kernel_size=1))

        self.conv_mask_s = nn.Conv2d(channels, 1, kernel_size=1)
        self.conv_mask_t = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel_add_conv_s = context()
        self.channel_add_conv_t = context()
        # as the official reset_parameters: attention pooling kaiming, the
        # context branches' last conv at zero (the relation starts at MSE)
        kaiming_init(self.conv_mask_s, mode='fan_in')
        kaiming_init(self.conv_mask_t, mode='fan_in')
        constant_init(self.channel_add_conv_s[-1], val=0)
        constant_init(self.channel_add_conv_t[-1], val=0)

    def forward(self,
                pred_s: Tensor,
                pred_t: Tensor,
                gt_bboxes: List[Tensor],
                data_samples: list,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """The loss of one (adapted) student map and the teacher's, with
        each image's ground-truth boxes and data sample."""
        return super().forward(
            pred_s,
            pred_t,
            weight,
            avg_factor,
            reduction_override,
            gt_bboxes=gt_bboxes,
            data_samples=data_samples)

    def _context(self, feat: Tensor, student: bool) -> Tensor:
        """GcBlock global context ``(N, C, 1, 1)`` added to ``feat``."""
        n, c, h, w = feat.shape
        conv_mask = self.conv_mask_s if student else self.conv_mask_t
        weights = F.softmax(conv_mask(feat).reshape(n, 1, h * w), dim=2)
        context = torch.bmm(feat.reshape(n, c, h * w), weights.transpose(1, 2))
        branch = self.channel_add_conv_s if student else \
            self.channel_add_conv_t
        return feat + branch(context.reshape(n, c, 1, 1))

    def elementwise(self, feat_s: Tensor, feat_t: Tensor, gt_bboxes: list,
                    data_samples: list) -> Tensor:
        """The map's weighted sum of the four terms, a scalar."""
        self.check_maps(feat_s, feat_t)
        n = feat_s.shape[0]
        if len(gt_bboxes) != n or len(data_samples) != n:
            raise ValueError(
                f'FGDLoss got {len(gt_bboxes)} box sets and '
                f'{len(data_samples)} data samples for {n} images')
        boxes = [getattr(b, 'tensor', b) for b in gt_bboxes]  # mmdet Boxes
        shapes = [ds.metainfo['img_shape'][:2] for ds in data_samples]
        spatial_t, channel_t = attention(feat_t, self.temp)
        spatial_s, channel_s = attention(feat_s, self.temp)
        mask_fg, mask_bg = box_masks(boxes, shapes, feat_t.shape[2:],
                                     feat_t.device)
        scale = (spatial_t.unsqueeze(1) * channel_t[:, :, None, None])
        sq = (feat_s - feat_t)**2 * scale
        fg = (sq * mask_fg.unsqueeze(1)).sum() / n
        bg = (sq * mask_bg.unsqueeze(1)).sum() / n
        mask = ((channel_s - channel_t).abs().sum() +
                (spatial_s - spatial_t).abs().sum()) / n
        rela = ((self._context(feat_s, True) -
                 self._context(feat_t, False))**2).sum() / n
        return (self.alpha_fgd * fg + self.beta_fgd * bg +
                self.gamma_fgd * mask + self.lambda_fgd * rela)
