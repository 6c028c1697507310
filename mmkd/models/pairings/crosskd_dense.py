"""CrossKD for RetinaNet, ATSS and FCOS heads (mmdet's RetinaHead,
ATSSHead, FCOSHead): the records of the official ``CrossKDRetinaNet``,
``CrossKDATSS`` and ``CrossKDFCOS`` (jbwang1997/CrossKD)."""
from typing import Any, Dict, Sequence

import torch
from mmdet.models.dense_heads import ATSSHead, FCOSHead, RetinaHead
from mmdet.utils import reduce_mean
from torch import Tensor, nn

from mmkd.registry import MODELS
from .crosskd import CrossHeadPairing, score_weights
from .gfl import _flatten
from .mmdet_calls import loss_inputs


@MODELS.register_module()
class CrossKDRetinaPairing(CrossHeadPairing):
    """CrossKD's cross-head predictions of a RetinaHead, anchor by anchor.

    `CrossKD <https://arxiv.org/abs/2306.11369>`_ (Wang et al., CVPR 2024) as
    the official ``CrossKDRetinaNet`` (jbwang1997/CrossKD,
    ``mmdet/models/detectors/crosskd_retinanet.py``): the student's held
    maps of each branch run through the rest of the teacher's head
    (:class:`~mmkd.models.pairings.crosskd.CrossHeadPairing`; ``retina_cls``
    and ``retina_reg``, no level scale). Rows are anchors (``A`` per
    location), flattened over levels, images and positions as mmdet's
    ``loss_by_feat_single`` flattens them; the official per-level sums over
    a normaliser shared by the levels are these sums over all rows.

    Paired records (``(cross, teacher)``): ``cls``, class logits ``(R,
    C)``; ``boxes``, both sides' deltas decoded by the student's box coder
    at the student's anchors ``(R, 4)``, in pixels. Plain records:
    ``cls_weights``, the student's label weights (0 for ignored anchors);
    ``box_weights``, the teacher's max class score per anchor, 0 where the
    label weight is 0; ``avg_factor``, the ``avg_factor`` of the student's
    focal loss (its positives, at least 1 per image), the normaliser of
    both official KD losses (quality focal KD and GIoU, 1.0 each).

    Args:
        reused_teacher_head_idx (int): How many of the student's stacked
            convs run before the teacher's take over. Defaults to 3 (the
            official RetinaNet setting).

    Example:
        >>> sorted(CrossKDRetinaPairing().keys())
        ['avg_factor', 'box_weights', 'boxes', 'cls', 'cls_weights']
    """

    head_type = RetinaHead
    outputs = dict(
        cls=('cls_convs', 'retina_cls'), reg=('reg_convs', 'retina_reg'))
    paired = ('cls', 'boxes')
    plain = ('cls_weights', 'box_weights', 'avg_factor')

    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        return self._records(*self._predictions(teacher_records))

    def _records(self, cross: Dict, teacher: Dict) -> Dict[str, Any]:
        cls = self._cls(cross, teacher)
        label_weights = torch.cat(self._seen['label_weights']).reshape(-1)
        return dict(
            cls=cls,
            cls_weights=label_weights,
            boxes=self._boxes(cross, teacher),
            box_weights=score_weights(cls[1], label_weights),
            avg_factor=self._seen['avg_factor'])


@MODELS.register_module()
class CrossKDATSSPairing(CrossKDRetinaPairing):
    """CrossKD's cross-head predictions of an ATSSHead.

    The official ``CrossKDATSS`` (jbwang1997/CrossKD,
    ``mmdet/models/detectors/crosskd_atss.py``): the records of
    :class:`CrossKDRetinaPairing` (``atss_cls``; ``atss_reg`` through the
    teacher's level scale; ``avg_factor`` the positives averaged over
    GPUs, as ``ATSSHead`` gives its focal loss), and ``centerness``, the
    paired centerness logits ``(P, 1)`` at the student's P positive
    anchors: the official config distils them with a sigmoid cross-entropy
    towards the teacher's sigmoid (weight 1.0) over ``avg_factor``; with no
    positive it gives 0, as an empty record does.

    Args:
        reused_teacher_head_idx (int): How many of the student's stacked
            convs run before the teacher's take over. Defaults to 3 (the
            official ATSS setting).

    Example:
        >>> sorted(CrossKDATSSPairing().paired)
        ['boxes', 'centerness', 'cls']
    """

    head_type = ATSSHead
    outputs = dict(
        cls=('cls_convs', 'atss_cls'),
        reg=('reg_convs', 'atss_reg'),
        centerness=('reg_convs', 'atss_centerness'))
    scaled = ('reg', )
    paired = ('cls', 'boxes', 'centerness')

    def _records(self, cross: Dict, teacher: Dict) -> Dict[str, Any]:
        out = super()._records(cross, teacher)
        labels = torch.cat(self._seen['labels']).reshape(-1)
        pos = (labels >= 0) & (labels < self._heads[0].num_classes)
        out['centerness'] = tuple(
            _flatten(side['centerness'], 1)[pos] for side in (cross, teacher))
        return out


@MODELS.register_module()
class CrossKDFCOSPairing(CrossHeadPairing):
    """CrossKD's cross-head predictions of an FCOSHead, point by point.

    The official ``CrossKDFCOS`` (jbwang1997/CrossKD,
    ``mmdet/models/detectors/crosskd_fcos.py``): the student's held maps
    run through the rest of the teacher's head (``conv_cls``; ``conv_reg``,
    the level scale, then as the teacher's ``forward_single``: ``exp``, or
    with ``norm_on_bbox`` a clamp at 0 and, the teacher being in eval mode,
    times the stride). The centerness branch is not distilled.

    Paired records (``(cross, teacher)``, every point of every level):
    ``cls``, class logits ``(M, C)``; ``boxes``, both sides' distances
    decoded at the student's points ``(M, 4)``. Plain records:
    ``box_weights``, the teacher's max class score per point (no mask: FCOS
    has no label weights); ``avg_factor``, the sum of the centerness targets
    of the student's positives averaged over GPUs, the normaliser of
    FCOS's own box loss, which the official config uses for both KD losses
    (quality focal KD 0.4 without weights, IoU 0.75).

    Departure: with no positive in the whole batch the official normaliser
    is mmdet's floor 1e-6, which multiplies the KD losses by a million;
    here it is 1.

    Args:
        reused_teacher_head_idx (int): How many of the student's stacked
            convs run before the teacher's take over. Defaults to 2 (the
            official FCOS setting).

    Example:
        >>> sorted(CrossKDFCOSPairing().keys())
        ['avg_factor', 'box_weights', 'boxes', 'cls']
    """

    head_type = FCOSHead
    outputs = dict(
        cls=('cls_convs', 'conv_cls'), reg=('reg_convs', 'conv_reg'))
    scaled = ('reg', )
    paired = ('cls', 'boxes')
    plain = ('box_weights', 'avg_factor')

    def __init__(self, reused_teacher_head_idx: int = 2) -> None:
        super().__init__(reused_teacher_head_idx)

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        super().setup(student, teacher, key)
        self.hooks.pre(self._heads[0].loss_bbox, self._on_box_loss)

    def _on_box_loss(self, module, args, kwargs) -> None:
        # FCOSHead weighs its box loss by the positives' centerness targets
        if self.active:
            weight = loss_inputs(module, args, kwargs)['weight']
            self._seen['centerness_sum'] = weight.detach().sum()

    def _finish(self, level: int, preds: Dict[str, Tensor]) -> None:
        head = self._heads[1]
        if head.norm_on_bbox:
            preds['reg'] = preds['reg'].clamp(min=0)
            if not head.training:
                preds['reg'] = preds['reg'] * head.strides[level]
        else:
            preds['reg'] = preds['reg'].exp()

    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        cross, teacher = self._predictions(teacher_records)
        cls = self._cls(cross, teacher)
        # every rank reduces, with or without positives of its own
        local = self._seen.get('centerness_sum', cls[1].new_zeros(()))
        denorm = float(reduce_mean(local.to(cls[1].device, torch.float)))
        return dict(
            cls=cls,
            boxes=self._boxes(cross, teacher),
            box_weights=score_weights(cls[1]),
            avg_factor=max(denorm, 1e-6) if denorm > 0 else 1.0)
