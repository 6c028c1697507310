"""1x1 adapters that map student features onto the teacher's channels."""
from typing import Dict, List, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS


@MODELS.register_module()
class ConvAdapter(nn.Module):
    """One trainable 1x1 convolution per feature level.

    The adaptation layer of `Learning Efficient Object Detection Models with
    Knowledge Distillation <https://papers.nips.cc/paper/6676>`_ (Chen et
    al., NeurIPS 2017): it lets a thinner student's features be compared with
    the teacher's, and Chen et al. use it even when the channels match. On
    ``(N, D)`` inputs (RoI embeddings) and ``(B, L, C)`` token sequences
    (transformer layers, channels last) it acts as a linear layer on the
    channels, as MobileBERT's feature-map transfer maps widths. Outputs whose
    spatial size differs from the teacher's are resized bilinearly.

    Args:
        in_channels (Sequence[int]): Student channels, one per level.
        out_channels (Sequence[int]): Teacher channels, one per level.

    Example:
        >>> import torch
        >>> adapter = ConvAdapter([8, 8], [16, 16])
        >>> out = adapter([torch.rand(2, 8, 4, 4), torch.rand(2, 8, 2, 2)])
        >>> [tuple(o.shape) for o in out]
        [(2, 16, 4, 4), (2, 16, 2, 2)]
        >>> tuple(ConvAdapter([8], [16])([torch.rand(2, 5, 8)])[0].shape)
        (2, 5, 16)
    """

    def __init__(self, in_channels: Sequence[int],
                 out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(in_channels) != len(out_channels):
            raise ValueError(
                f'the student has {len(in_channels)} levels and the teacher '
                f'{len(out_channels)}; an adapter needs one pair per level')
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=1)
            for c_in, c_out in zip(in_channels, out_channels))

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Adapt each level; ``(N, D)`` levels stay ``(N, D')``, ``(B, L,
        C)`` token levels ``(B, L, C')``."""
        outs = []
        for conv, feat in zip(self.convs, feats):
            if feat.dim() in (2, 3):
                outs.append(F.linear(feat, conv.weight.flatten(1), conv.bias))
            else:
                outs.append(conv(feat))
        return outs


def channel_dim(feat: Tensor) -> int:
    """The channel dimension of a tapped tensor: the last of a ``(B, L, C)``
    token sequence, else dim 1 (``(N, C, H, W)`` maps, ``(N, D)`` rows).

    Example:
        >>> import torch
        >>> channel_dim(torch.rand(2, 49, 96)), channel_dim(torch.rand(2, 8))
        (2, 1)
    """
    return 2 if feat.dim() == 3 else 1


def resize_like(feats: Sequence[Tensor],
                targets: Sequence[Tensor]) -> List[Tensor]:
    """Resize spatial maps bilinearly to their targets' sizes if needed."""
    return [
        F.interpolate(
            f, size=t.shape[2:], mode='bilinear', align_corners=False)
        if f.dim() == 4 and t.dim() == 4 and f.shape[2:] != t.shape[2:] else f
        for f, t in zip(feats, targets)
    ]


class AdapterDict(nn.ModuleDict):
    """Adapters by loss name, applied in one call (one forward of a DDP
    wrapper around them).

    Example:
        >>> import torch
        >>> adapters = AdapterDict(dict(hint=ConvAdapter([4], [8])))
        >>> out = adapters(dict(hint=[torch.rand(1, 4, 2, 2)],
        ...                     kd=[torch.rand(1, 3)]))
        >>> out['hint'][0].shape[1], out['kd'][0].shape[1]
        (8, 3)
    """

    def forward(self, feats: Dict[str, List[Tensor]]) -> Dict[str, list]:
        """Adapt the levels of every name that has an adapter."""
        return {n: self[n](f) if n in self else f for n, f in feats.items()}
