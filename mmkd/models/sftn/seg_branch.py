"""SFTN's student branch for mmseg segmentors, and the teacher's side."""
import copy
from typing import Dict, List, Optional, Set, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import add_prefix
from torch import Tensor, nn


def check_segmentor(model: nn.Module, key: str) -> None:
    """Fail unless ``model`` is an EncoderDecoder whose decode head's loss is
    its ``forward`` then ``loss_by_feat`` (so SFTN can keep the logits)."""
    if not isinstance(model, EncoderDecoder):
        raise NotImplementedError(
            f'{key}: the teacher is an mmseg segmentor, so the student must '
            'be an EncoderDecoder segmentor too (e.g. PSPNet, DeepLabV3, '
            f'FCN), got {type(model).__name__}')
    head = model.decode_head
    if not isinstance(head, BaseDecodeHead) or \
            type(head).loss is not BaseDecodeHead.loss:
        raise NotImplementedError(
            f'{key}.decode_head: SFTN needs one decode head whose loss() is '
            'its forward() then loss_by_feat(), as FCN, PSP, ASPP, UPer and '
            f'most mmseg heads; got {type(head).__name__}')


def check_student(student: nn.Module, teacher: EncoderDecoder,
                  key: str) -> None:
    """Fail unless the student is a segmentor without a neck that predicts
    the teacher's classes."""
    check_segmentor(student, key)
    if student.with_neck:
        raise NotImplementedError(
            f'{key}: SFTN branches copy backbone stages and heads only; a '
            'student with a neck is not implemented')
    if student.out_channels != teacher.out_channels:
        raise ValueError(
            f'{key}: the student predicts {student.out_channels} classes and '
            f'the teacher {teacher.out_channels}; the KL compares class '
            'maps, so give both the same num_classes')


def head_stages(head: nn.Module, out_indices: Tuple[int, ...]) -> Set[int]:
    """The backbone stages (0-based) a head reads through ``in_index``."""
    index = head.in_index
    index = list(index) if isinstance(index, (list, tuple)) else [index]
    return {out_indices[i] for i in index}


def check_decode_head_reach(student: EncoderDecoder, point: int) -> None:
    """Fail if the student's decode head reads a stage before ``point``,
    which a branch starting there does not compute."""
    stages = head_stages(student.decode_head,
                         tuple(student.backbone.out_indices))
    needed = min(stages) + 1
    if needed < point:
        raise ValueError(
            "model.branch_points: the student's decode head reads backbone "
            f'stage {needed}, which a branch after stage {point} does not '
            f'compute; use branch points up to {needed}')


def auxiliary_heads(model: EncoderDecoder) -> Dict[str, nn.Module]:
    """The auxiliary heads by the loss prefix mmseg gives them."""
    if not model.with_auxiliary_head:
        return {}
    heads = model.auxiliary_head
    if isinstance(heads, nn.ModuleList):
        return {f'aux_{i}': head for i, head in enumerate(heads)}
    return {'aux': heads}


def segmentor_loss(model: EncoderDecoder, feats: List[Tensor],
                   data_samples: list) -> Tuple[Dict[str, Tensor], Tensor]:
    """``EncoderDecoder.loss`` on extracted features, and the decode head's
    logits it computes on the way."""
    logits = model.decode_head(feats)
    losses = add_prefix(
        model.decode_head.loss_by_feat(logits, data_samples), 'decode')
    for prefix, head in auxiliary_heads(model).items():
        losses.update(
            add_prefix(head.loss(feats, data_samples, model.train_cfg),
                       prefix))
    return losses, logits


def labelled_pixels(data_samples: list, size: torch.Size,
                    ignore_index: int) -> Tensor:
    """``(N, H, W)``: pixels whose label (nearest-resized to ``size``) is not
    ``ignore_index``; mmseg pads label maps with it where it pads images."""
    labels = torch.stack([s.gt_sem_seg.data for s in data_samples]).float()
    labels = F.interpolate(labels, size=size, mode='nearest')[:, 0]
    return labels != ignore_index


class SegmentorBranch(nn.Module):
    """One student branch of SFTN: ``T_i``, then copies of the student's
    backbone stages after stage ``i`` and of its heads.

    The branch takes the teacher's features after its stage ``i``, maps them
    to the student's width there with ``T_i`` (a ConvModule) and runs the
    student's stages ``i + 1 .. K``; its heads read the stage outputs by the
    student's ``out_indices`` (the output of ``T_i`` stands for the student's
    stage ``i``). It has a copy of the student's decode head, whose logits
    are ``q_R^i``, and of each auxiliary head that reads only stages the
    branch computes itself (after ``i``); other auxiliary heads are left
    out. The student itself is not kept.

    Args:
        student (EncoderDecoder): The student segmentor, copied from.
        point (int): The teacher stage ``i`` the branch starts after
            (1-based).
        channels (tuple[int, int]): The teacher's and the student's channels
            after stage ``i``.
        transform (dict): Keyword arguments of mmcv's ``ConvModule`` for
            ``T_i`` besides the channels.

    Example:
        >>> from mmseg.models import EncoderDecoder
        >>> student = EncoderDecoder(
        ...     backbone=dict(type='mmseg.ResNetV1c', depth=18,
        ...                   base_channels=8, stem_channels=8),
        ...     decode_head=dict(type='mmseg.FCNHead', in_channels=64,
        ...                      channels=8, num_classes=3, in_index=3))
        >>> branch = SegmentorBranch(student, 2, (32, 16), dict(
        ...     kernel_size=1, norm_cfg=dict(type='BN')))
        >>> list(branch.backbone)
        ['layer3', 'layer4']
        >>> [tuple(f.shape) for f in branch(torch.rand(1, 32, 8, 8))[1:]]
        [(1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 2, 2)]
    """

    def __init__(self, student: EncoderDecoder, point: int,
                 channels: Tuple[int, int], transform: dict) -> None:
        super().__init__()
        self.point = point
        self.out_indices = tuple(student.backbone.out_indices)
        self.transform = ConvModule(*channels, **transform)
        stages = student.backbone.res_layers
        self.backbone = nn.ModuleDict({
            name: copy.deepcopy(getattr(student.backbone, name))
            for name in stages[point:]
        })
        self.decode_head = copy.deepcopy(student.decode_head)
        self.auxiliary_heads = nn.ModuleDict({
            prefix: copy.deepcopy(head)
            for prefix, head in auxiliary_heads(student).items()
            if min(head_stages(head, self.out_indices)) >= point
        })

    def forward(self, feat_t: Tensor) -> List[Optional[Tensor]]:
        """The student's backbone outputs, None for stages before ``i``."""
        x = self.transform(feat_t)
        outs = {self.point - 1: x}
        for offset, stage in enumerate(self.backbone.values()):
            x = stage(x)
            outs[self.point + offset] = x
        return [outs.get(i) for i in self.out_indices]

    def loss(self, feat_t: Tensor,
             data_samples: list) -> Tuple[Dict[str, Tensor], Tensor]:
        """The branch's task losses (mmseg's keys) and its logits."""
        feats = self(feat_t)
        logits = self.decode_head(feats)
        losses = add_prefix(
            self.decode_head.loss_by_feat(logits, data_samples), 'decode')
        for prefix, head in self.auxiliary_heads.items():
            losses.update(
                add_prefix(head.loss(feats, data_samples, None), prefix))
        return losses, logits

    def copy_student(self, student: EncoderDecoder) -> None:
        """Load the student's (initialised) weights into the copies."""
        for name, stage in self.backbone.items():
            stage.load_state_dict(getattr(student.backbone, name).state_dict())
        self.decode_head.load_state_dict(student.decode_head.state_dict())
        heads = auxiliary_heads(student)
        for prefix, head in self.auxiliary_heads.items():
            head.load_state_dict(heads[prefix].state_dict())
