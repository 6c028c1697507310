"""CrossKD: the student's head features through the teacher's head."""
from typing import Any, Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmdet.models.utils import images_to_levels
from torch import Tensor, nn

from mmkd.registry import MODELS
from ..distillers.taps import levels_of
from .gfl import GFLPairing, _check_same, _flatten, _gfl_head
from .mmdet_calls import loss_inputs


def align_scale(feat_s: Tensor, feat_t: Tensor) -> Tensor:
    """The student map with each channel standardised over batch and
    positions, then given the teacher channel's mean and (unbiased) std.

    Example:
        >>> import torch
        >>> s = torch.tensor([[[[0., 2.]]]])   # mean 1, std sqrt 2
        >>> t = torch.tensor([[[[10., 14.]]]])  # mean 12, std sqrt 8
        >>> [round(v, 3) for v in align_scale(s, t).flatten().tolist()]
        [10.0, 14.0]
    """
    dims = [0, 2, 3]
    mean_s, std_s = feat_s.mean(dims, keepdim=True), feat_s.std(
        dims, keepdim=True)
    mean_t, std_t = feat_t.mean(dims, keepdim=True), feat_t.std(
        dims, keepdim=True)
    return (feat_s - mean_s) / (std_s + 1e-6) * std_t + mean_t


def _hold_module(head: nn.Module, branch: str, index: int) -> str:
    """Name, under ``bbox_head``, of the module whose output is conv
    ``index`` of ``branch`` before its activation."""
    conv = getattr(head, branch)[index]
    inner = conv.norm_name if getattr(conv, 'with_norm', False) else 'conv'
    return f'{branch}.{index}.{inner}'


@MODELS.register_module()
class CrossKDPairing(GFLPairing):
    """The student's intermediate head features, run through the rest of the
    teacher's head, beside the teacher's own predictions.

    `CrossKD: Cross-Head Knowledge Distillation for Object Detection
    <https://arxiv.org/abs/2306.11369>`_ (Wang et al., CVPR 2024; official
    code `jbwang1997/CrossKD <https://github.com/jbwang1997/CrossKD>`_,
    ``CrossKDGFL``). In each branch of a GFL-family head (classification and
    box), the student's output of conv ``reused_teacher_head_idx`` (before
    its activation) is standardised per channel and given the teacher's
    per-channel mean and std at the same place (:func:`align_scale`), then
    ReLU, the teacher's remaining convs, its predictor and its level scale
    turn it into *cross-head* predictions. The teacher's layers are frozen;
    the gradient flows through them into the student. The distillation
    losses compare the cross-head predictions with the teacher's own, so
    they never pull on the student's own predictions directly.

    Paired records (``(cross, teacher)``, every location of every level,
    flattened as mmdet's heads flatten them): ``cls``, class logits ``(M,
    C)``; ``corners``, box-edge logits ``(4M, reg_max + 1)``; ``boxes``,
    boxes decoded from them ``(M, 4)`` in stride units. Plain records:
    ``cls_weights``, the student's label weights, and ``avg_factor``, the
    positives its Quality Focal Loss divides by; ``corner_weights``, the
    teacher's max class score per location (0 where the label weight is 0),
    once per edge, and ``corner_avg_factor``, 4 times their sum over the
    locations; ``box_weights`` and ``box_avg_factor``, the same once per
    location. These are the official ``pred_mimicking_loss_single``
    weights and normalisers (its per-level sums, divided by the total of
    the weights over the levels).

    Args:
        reused_teacher_head_idx (int): How many of the student's stacked
            convs run before the teacher's take over, from 1 to the number of
            stacked convs. Defaults to 3 (the official GFL setting).

    Example:
        >>> sorted(CrossKDPairing().paired)
        ['boxes', 'cls', 'corners']
    """

    def __init__(self, reused_teacher_head_idx: int = 3) -> None:
        super().__init__(vlr=False)
        if isinstance(reused_teacher_head_idx, bool) or not isinstance(
                reused_teacher_head_idx, int) or reused_teacher_head_idx < 1:
            raise ValueError(
                'reused_teacher_head_idx must be an int >= 1 (the student '
                'convs before the teacher head takes over), got '
                f'{reused_teacher_head_idx!r}')
        self.idx = reused_teacher_head_idx
        self.paired = ('cls', 'corners', 'boxes')
        self.plain = ('cls_weights', 'avg_factor', 'corner_weights',
                      'corner_avg_factor', 'box_weights', 'box_avg_factor')
        self._holds: Dict[str, str] = {}
        self._holds_t: Dict[str, str] = {}

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        super().setup(student, teacher, key)
        head_s = _gfl_head(student, 'student', key)
        head_t = _gfl_head(teacher, 'teacher', key)
        for head, side in ((head_s, 'student'), (head_t, 'teacher')):
            if self.idx > head.stacked_convs:
                raise ValueError(
                    f'{key}.reused_teacher_head_idx is {self.idx}, but the '
                    f'{side} head has {head.stacked_convs} stacked convs')
        _check_same(key, 'feat_channels', head_s.feat_channels,
                    head_t.feat_channels)
        self._holds = {
            branch: _hold_module(head_s, branch, self.idx - 1)
            for branch in ('cls_convs', 'reg_convs')
        }
        self._holds_t = {
            branch: 'bbox_head.' + _hold_module(head_t, branch, self.idx - 1)
            for branch in ('cls_convs', 'reg_convs')
        }
        self.teacher_taps = self.teacher_taps + tuple(self._holds_t.values())
        for branch, name in self._holds.items():
            self.hooks.post(
                head_s.get_submodule(name),
                lambda m, a, out, branch=branch: self._on_hold(branch, out))

    def _on_hold(self, branch: str, output: Tensor) -> None:
        if self.active:
            self._seen.setdefault(branch, []).append(output)

    def _on_labels(self, module, args, kwargs) -> None:
        super()._on_labels(module, args, kwargs)
        if self.active:
            avg = loss_inputs(module, args, kwargs)['avg_factor']
            self._seen['avg_factor'] = 1.0 if avg is None else avg

    def _cross(self, feats_s: List[Tensor], feats_t: List[Tensor],
               branch: str) -> List[Tensor]:
        """Each level's student hold through the rest of the teacher's
        branch: class logits, or scaled box-edge logits."""
        head = self._heads[1]
        out = []
        for level, (feat_s, feat_t) in enumerate(zip(feats_s, feats_t)):
            feat = F.relu(align_scale(feat_s, feat_t.to(feat_s.dtype)))
            for conv in getattr(head, branch)[self.idx:]:
                feat = conv(feat)
            if branch == 'cls_convs':
                out.append(head.gfl_cls(feat))
            else:
                out.append(head.scales[level](head.gfl_reg(feat)).float())
        return out

    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        seen = self._seen
        if 'labels' not in seen or 'cls_convs' not in seen:
            raise RuntimeError('CrossKDPairing saw no GFL head loss: is the '
                               'student a GFL-family detector in training?')
        head_s, head_t = self._heads
        num_levels = len(seen['cls_convs'])
        holds_t = {
            branch: levels_of(teacher_records[name])
            for branch, name in self._holds_t.items()
        }
        cross_cls = self._cross(seen['cls_convs'], holds_t['cls_convs'],
                                'cls_convs')
        cross_reg = self._cross(seen['reg_convs'], holds_t['reg_convs'],
                                'reg_convs')
        cls_t = levels_of(teacher_records['bbox_head.gfl_cls'])
        reg_t = [
            teacher_records[f'bbox_head.scales.{i}'] for i in range(num_levels)
        ]
        label_weights = torch.cat(seen['label_weights']).reshape(-1)
        flat_cls_t = _flatten(cls_t)
        weights = flat_cls_t.detach().max(dim=1).values.sigmoid()
        weights = torch.where(label_weights == 0, weights.new_zeros(()),
                              weights)
        bins = head_s.reg_max + 1
        flat_reg_s, flat_reg_t = _flatten(cross_reg), _flatten(reg_t)
        centres = self._anchor_centres([c.shape[-2:] for c in cls_t],
                                       data_samples, cls_t[0].device)
        boxes = tuple(
            head_t.bbox_coder.decode(centres, head_t.integral(reg))
            for reg in (flat_reg_s, flat_reg_t))
        total = weights.sum()
        return dict(
            cls=(_flatten(cross_cls), flat_cls_t),
            cls_weights=label_weights,
            avg_factor=seen['avg_factor'],
            corners=(flat_reg_s.reshape(-1, bins),
                     flat_reg_t.reshape(-1, bins)),
            corner_weights=weights.repeat_interleave(4),
            corner_avg_factor=4 * total,
            boxes=boxes,
            box_weights=weights,
            box_avg_factor=total)

    def _anchor_centres(self, sizes: list, data_samples: Sequence,
                        device) -> Tensor:
        """Every location's anchor centre in units of its level's stride,
        flattened as :func:`_flatten`."""
        head = self._heads[0]
        metas = [sample.metainfo for sample in data_samples]
        anchors, _ = head.get_anchors(sizes, metas, device=device)
        counts = [len(a) for a in anchors[0]]
        levels = images_to_levels([torch.cat(a) for a in anchors], counts)
        strides = head.prior_generator.strides
        return torch.cat([
            head.anchor_center(level.reshape(-1, 4)) / stride[0]
            for level, stride in zip(levels, strides)
        ])
