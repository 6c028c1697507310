"""Student and teacher GFL-head outputs at the student's LD regions."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.models.utils import images_to_levels
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from torch import Tensor, nn

from mmkd.registry import MODELS
from ..distillers.taps import levels_of
from .base import BasePairing
from .mmdet_calls import loss_inputs, loss_labels


def _gfl_head(model: nn.Module, side: str, key: str) -> nn.Module:
    head = getattr(model, 'bbox_head', None)
    needed = ('integral', 'reg_max', 'gfl_cls', 'scales', 'loss_cls',
              'prior_generator')
    if head is None or not all(hasattr(head, n) for n in needed):
        raise TypeError(
            f'{key}: GFLPairing needs one-stage detectors whose bbox_head '
            'predicts each box edge as a distribution (GFL-family heads '
            'with `integral` and `reg_max`: GFLHead, LDHead); the '
            f'{side} is {type(model).__name__} with bbox_head '
            f'{type(head).__name__}')
    return head


def _check_same(key: str,
                what: str,
                value_s: Any,
                value_t: Any,
                why: str = 'LD pairs the heads location by location and '
                'bin by bin') -> None:
    if value_s != value_t:
        raise ValueError(
            f'{key}: the student head has {what} {value_s} and the teacher '
            f'head {value_t}; {why}, so they must be equal')


def record_labels(seen: Dict[str, Any], module: nn.Module, args: tuple,
                  kwargs: dict) -> Dict:
    """Append the labels and label weights (ones if none) of a head's
    ``loss_cls`` call to ``seen['labels']`` and ``seen['label_weights']``;
    return the call (:func:`~mmkd.models.pairings.mmdet_calls.loss_inputs`).
    """
    call = loss_inputs(module, args, kwargs)
    labels, weight = loss_labels(call), call['weight']
    if weight is None:
        weight = torch.ones_like(labels, dtype=torch.float)
    seen.setdefault('labels', []).append(labels)
    seen.setdefault('label_weights', []).append(weight)
    return call


def valuable_localization_region(anchors: Tensor,
                                 num_level_anchors: List[int],
                                 gts: Tensor,
                                 topk: int = 9,
                                 alpha: float = 0.25) -> Tensor:
    """(A, ) VLR weight of each anchor: its best IoU with a ground truth
    whose distance-IoU with it is in ``[alpha * thr, thr)``, 0 elsewhere.

    ``thr`` is ATSS's threshold of that ground truth: the mean plus the
    standard deviation of the IoUs of its ``topk`` closest anchors (centre
    distance) of every level. DIoU is ``IoU - rho^2 / c^2`` (Zheng et al.,
    AAAI 2020), ``rho`` the distance of the centres, ``c`` the diagonal of
    the smallest enclosing box. One IoU matrix and one matrix of centre
    distances serve both.
    """
    weight = anchors.new_zeros(len(anchors))
    if len(gts) == 0 or len(anchors) == 0:
        return weight
    iou = bbox_overlaps(anchors, gts)
    centres = (anchors[:, None, :2] + anchors[:, None, 2:]) / 2
    rho2 = ((centres - (gts[None, :, :2] + gts[None, :, 2:]) / 2)**2).sum(-1)
    candidates, start = [], 0
    for count in num_level_anchors:
        k = min(topk, count)
        if k > 0:
            nearest = rho2[start:start + count].topk(
                k, dim=0, largest=False).indices
            candidates.append(nearest + start)
        start += count
    candidate_iou = iou.gather(0, torch.cat(candidates))
    thr = candidate_iou.mean(0)
    if len(candidate_iou) > 1:
        thr = thr + candidate_iou.std(0)
    enclose = (
        torch.max(anchors[:, None, 2:], gts[None, :, 2:]) -
        torch.min(anchors[:, None, :2], gts[None, :, :2]))
    c2 = (enclose**2).sum(-1).clamp(min=torch.finfo(iou.dtype).eps)
    diou = iou - rho2 / c2
    region = (diou >= alpha * thr) & (diou < thr)
    best = torch.where(region, iou, iou.new_full((), -1.)).max(dim=1).values
    return best.clamp(min=0)


@MODELS.register_module()
class GFLPairing(BasePairing):
    """Student and teacher box distributions where LD distils them.

    The records of `Localization Distillation for Dense Object Detection
    <https://arxiv.org/abs/2102.12252>`_ (Zheng et al., CVPR 2022; official
    code `HikariTJU/LD <https://github.com/HikariTJU/LD>`_) for GFL-family
    heads. During the student's own ``loss()`` a forward hook records its
    head outputs and a pre-hook on its ``loss_cls`` (Quality Focal Loss)
    the labels and label weights of every anchor, so the main region is the
    student's own positives, not assigned again. The teacher runs backbone,
    neck and head only: its taps are the head's ``gfl_cls`` and ``scales``
    (the box logits), hooked per level because detectors call
    ``bbox_head.forward`` directly, which forward hooks on ``bbox_head``
    do not see.

    Paired records (``(student, teacher)``): ``corners``, box-edge logits
    ``(4P, reg_max + 1)`` at the P positives (edge-major per location, as
    mmdet's ``LDHead``); ``cls``, class logits ``(P, C)`` there;
    ``vlr_corners`` ``(4V, reg_max + 1)`` at the V locations of the valuable
    localization region (with ``vlr=True``). Plain records: ``weights``, the
    student's detached max class score per positive, once per edge;
    ``cls_weights``, ``label_weight / positives of its level`` (the official
    classification KD averages per level); ``vlr_weights``, the VLR IoU per
    edge. As in the official code the VLR is computed on all valid anchors
    of every level (positives included) against each image's ground truth:
    one extra IoU, DIoU and centre-distance matrix (anchors x boxes) per
    image, about the cost of ATSS's own assignment.

    Args:
        vlr (bool): Whether to give the VLR records. Defaults to True.
        alpha (float): The VLR's lower DIoU bound is ``alpha * thr``.
            Defaults to 0.25.
        topk (int): Closest anchors per level and box whose IoUs set the
            VLR's ATSS threshold ``thr``. Defaults to 9.

    Example:
        >>> sorted(GFLPairing(vlr=False).keys())
        ['cls', 'cls_weights', 'corners', 'weights']
    """

    def __init__(self,
                 vlr: bool = True,
                 alpha: float = 0.25,
                 topk: int = 9) -> None:
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be in [0, 1], got alpha={alpha}')
        if topk < 1:
            raise ValueError(f'topk must be >= 1, got topk={topk}')
        self.vlr, self.alpha, self.topk = vlr, alpha, topk
        self.paired = ('corners', 'cls') + (('vlr_corners', ) if vlr else ())
        self.plain = ('weights', 'cls_weights') + (
            ('vlr_weights', ) if vlr else ())
        self.teacher_taps = ()
        self._seen: Dict[str, Any] = {}
        self._heads: Tuple[nn.Module, ...] = ()

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        head_s = _gfl_head(student, 'student', key)
        head_t = _gfl_head(teacher, 'teacher', key)
        _check_same(key, 'reg_max', head_s.reg_max, head_t.reg_max)
        _check_same(key, 'classes', head_s.cls_out_channels,
                    head_t.cls_out_channels)
        gen_s, gen_t = head_s.prior_generator, head_t.prior_generator
        _check_same(key, 'strides', gen_s.strides, gen_t.strides)
        _check_same(key, 'anchors', [b.tolist() for b in gen_s.base_anchors],
                    [b.tolist() for b in gen_t.base_anchors])
        self._heads = (head_s, head_t)
        self.teacher_taps = ('bbox_head.gfl_cls', ) + tuple(
            f'bbox_head.scales.{i}' for i in range(len(head_t.scales)))
        self.hooks.post(head_s, self._on_head)
        self.hooks.pre(head_s.loss_cls, self._on_labels)

    # ---- hooks on the student's loss path ----------------------------------
    def _on_head(self, module, args, output) -> None:
        if self.active:
            self._seen['cls'], self._seen['reg'] = output

    def _on_labels(self, module, args, kwargs) -> None:
        if self.active:
            record_labels(self._seen, module, args, kwargs)

    def reset(self) -> None:
        self._seen = {}

    # ---- records -----------------------------------------------------------
    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        seen = self._seen
        if 'labels' not in seen or 'cls' not in seen:
            raise RuntimeError('GFLPairing saw no GFL head loss: is the '
                               'student a GFL-family detector in training?')
        head_s = self._heads[0]
        num_levels = len(seen['cls'])
        cls_s, reg_s = _flatten(seen['cls']), _flatten(seen['reg'])
        cls_t = _flatten(levels_of(teacher_records['bbox_head.gfl_cls']))
        reg_t = _flatten([
            teacher_records[f'bbox_head.scales.{i}'] for i in range(num_levels)
        ])
        labels = torch.cat(seen['labels'])
        label_weights = torch.cat(seen['label_weights'])
        counts = [len(level_labels) for level_labels in seen['labels']]
        level = torch.repeat_interleave(
            torch.arange(num_levels, device=labels.device),
            torch.tensor(counts, device=labels.device))
        pos = (labels >= 0) & (labels < head_s.num_classes)
        bins = head_s.reg_max + 1
        score = cls_s.detach().sigmoid().max(dim=1).values
        per_level = torch.bincount(level[pos], minlength=num_levels)
        corners_s, corners_t = reg_s[pos], reg_t[pos]
        out = dict(
            corners=(corners_s.reshape(-1, bins), corners_t.reshape(-1, bins)),
            weights=score[pos].repeat_interleave(4),
            cls=(cls_s[pos], cls_t[pos]),
            cls_weights=label_weights[pos] / per_level[level[pos]])
        if self.vlr:
            vlr = self._vlr_weights(seen['cls'], data_samples)
            region = vlr > 0
            out.update(
                vlr_corners=(reg_s[region].reshape(-1, bins),
                             reg_t[region].reshape(-1, bins)),
                vlr_weights=vlr[region].repeat_interleave(4))
        return out

    def _vlr_weights(self, cls_scores: List[Tensor],
                     data_samples: Sequence) -> Tensor:
        """VLR weights of every location, flattened as :func:`_flatten`."""
        head = self._heads[0]
        metas = [sample.metainfo for sample in data_samples]
        sizes = [score.shape[-2:] for score in cls_scores]
        with torch.no_grad():
            anchors, valid = head.get_anchors(
                sizes, metas, device=cls_scores[0].device)
            border = (head.train_cfg or {}).get('allowed_border', -1)
            weights = []
            for anchors_i, valid_i, sample in zip(anchors, valid,
                                                  data_samples):
                counts = [len(a) for a in anchors_i]
                anchors_i, valid_i = torch.cat(anchors_i), torch.cat(valid_i)
                inside = anchor_inside_flags(anchors_i, valid_i,
                                             sample.metainfo['img_shape'][:2],
                                             border)
                counts_inside = [int(f.sum()) for f in inside.split(counts)]
                gts = get_box_tensor(sample.gt_instances.bboxes)
                weight = anchors_i.new_zeros(len(anchors_i))
                weight[inside] = valuable_localization_region(
                    anchors_i[inside], counts_inside, gts.to(anchors_i),
                    self.topk, self.alpha)
                weights.append(weight)
            levels = images_to_levels(weights, counts)
        return torch.cat([w.reshape(-1) for w in levels])


def _flatten(levels: Sequence[Tensor], width: Optional[int] = None) -> Tensor:
    """(N, K, H, W) levels to (sum_levels N*H*W*K/width, width), level by
    level, as mmdet's heads flatten them for their losses; ``width``
    defaults to K (one row per location), a divisor of K gives one row per
    anchor (RetinaNet: ``K = anchors * classes``)."""
    return torch.cat([
        level.permute(0, 2, 3, 1).reshape(-1, width or level.shape[1])
        for level in levels
    ])
