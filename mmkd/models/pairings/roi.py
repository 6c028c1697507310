"""The teacher's RoI head on the student's sampled proposals."""
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmkd.registry import MODELS
from .base import BasePairing
from .mmdet_calls import extractor_rois, loss_inputs


def _bbox_head(model: nn.Module, side: str, key: str) -> nn.Module:
    roi_head = getattr(model, 'roi_head', None)
    head = getattr(roi_head, 'bbox_head', None)
    if head is None or not hasattr(roi_head, 'bbox_roi_extractor') \
            or not hasattr(head, 'fc_cls'):
        raise TypeError(
            f'{key}: RoIPairing needs two-stage detectors with a '
            'StandardRoIHead and a ConvFCBBoxHead (e.g. Faster R-CNN); the '
            f'{side} is {type(model).__name__} with roi_head '
            f'{type(roi_head).__name__}')
    return head


@MODELS.register_module()
class RoIPairing(BasePairing):
    """Student and teacher RoI-head outputs on the student's sampled RoIs.

    The RoI-level records of `Learning Efficient Object Detection Models
    with Knowledge Distillation <https://papers.nips.cc/paper/6676>`_ (Chen
    et al., NeurIPS 2017) and of the ND loss (`Wang et al., 2023
    <https://arxiv.org/abs/2305.17007>`_): during the student's own
    ``loss()`` forward hooks record the RoIs its sampler drew, its box-head
    outputs, its box-head embedding (the input of ``fc_cls``: the shared-FC
    output) and the labels and regression targets its ``loss_cls`` and
    ``loss_bbox`` received. The teacher's RoI extractor and box head then
    run, under ``no_grad``, on the teacher's own FPN features at those
    RoIs. Nothing is assigned or sampled twice.

    Paired records (``(student, teacher)``): ``cls`` logits ``(N, C+1)``
    (background last), ``reg`` deltas ``(N, 4)`` of each RoI's labelled
    class (zeros for background), ``emb`` embeddings ``(N, D)``. Plain
    records: ``labels`` ``(N,)``, ``reg_targets`` ``(N, 4)``,
    ``reg_weights`` ``(N,)`` (1 for positives), ``rois`` ``(N, 5)``,
    ``avg_factor``, the normaliser of the student's ``loss_bbox`` (mmdet:
    all ``N`` sampled RoIs), for box losses added to it.

    Example:
        >>> sorted(RoIPairing().keys())  # doctest: +NORMALIZE_WHITESPACE
        ['avg_factor', 'cls', 'emb', 'labels', 'reg', 'reg_targets',
         'reg_weights', 'rois']
    """

    teacher_taps = ('neck', )
    paired = ('cls', 'reg', 'emb')
    plain = ('labels', 'reg_targets', 'reg_weights', 'rois', 'avg_factor')

    def __init__(self) -> None:
        super().__init__()
        self._seen: Dict[str, Any] = {}
        self._heads: Tuple[nn.Module, ...] = ()
        self._teacher: Tuple[nn.Module, ...] = ()

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        head_s = _bbox_head(student, 'student', key)
        head_t = _bbox_head(teacher, 'teacher', key)
        if head_s.num_classes != head_t.num_classes:
            raise ValueError(
                f'{key}: the student has {head_s.num_classes} classes and '
                f'the teacher {head_t.num_classes}; RoI-level distillation '
                'pairs logits class by class, so they must match')
        strides = [
            m.roi_head.bbox_roi_extractor.featmap_strides
            for m in (student, teacher)
        ]
        if strides[0] != strides[1]:
            raise ValueError(f'{key}: the RoI extractors read strides '
                             f'{strides[0]} (student) and {strides[1]} '
                             '(teacher); they must match')
        self._heads = (head_s, head_t)
        self._teacher = (teacher, )
        self.hooks.pre(student.roi_head.bbox_roi_extractor, self._on_extract)
        self.hooks.post(head_s, self._on_head)
        self.hooks.pre(head_s.fc_cls, self._on_embed('emb_s'))
        self.hooks.pre(head_t.fc_cls, self._on_embed('emb_t'))
        self.hooks.pre(head_s.loss_cls, self._on_labels)
        self.hooks.pre(head_s.loss_bbox, self._on_targets)

    # ---- hooks on the student's loss path ----------------------------------
    def _on_extract(self, module, args, kwargs) -> None:
        if self.active:
            self._seen['rois'] = extractor_rois(module, args, kwargs)

    def _on_head(self, module, args, output) -> None:
        if self.active:
            self._seen['cls_s'], self._seen['deltas_s'] = output

    def _on_embed(self, name: str):

        def hook(module, args, kwargs) -> None:
            if self.active or name == 'emb_t':
                self._seen[name] = args[0]  # nn.Linear's input

        return hook

    def _on_labels(self, module, args, kwargs) -> None:
        if self.active:
            self._seen['labels'] = loss_inputs(module, args, kwargs)['target']

    def _on_targets(self, module, args, kwargs) -> None:
        if self.active:
            call = loss_inputs(module, args, kwargs)
            self._seen['pos_targets'] = call['target']
            if call['avg_factor'] is not None:
                self._seen['avg_factor'] = call['avg_factor']

    def reset(self) -> None:
        self._seen = {}

    def channels(self, student,
                 teacher) -> Dict[str, Tuple[List[int], List[int]]]:
        head_s, head_t = self._heads
        return dict(
            emb=([head_s.fc_cls.in_features], [head_t.fc_cls.in_features]))

    # ---- records -----------------------------------------------------------
    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        seen = self._seen
        if 'labels' not in seen:
            raise RuntimeError('RoIPairing saw no RoI loss: is the student '
                               'a two-stage detector in training?')
        teacher = self._teacher[0]
        with self.teacher_forward(inputs.device, teacher.roi_head):
            extractor = teacher.roi_head.bbox_roi_extractor
            feats = teacher_records['neck'][:extractor.num_inputs]
            bbox_feats = extractor(feats, seen['rois'])
            if teacher.roi_head.with_shared_head:
                bbox_feats = teacher.roi_head.shared_head(bbox_feats)
            cls_t, deltas_t = teacher.roi_head.bbox_head(bbox_feats)
        emb_t = self._seen.pop('emb_t')
        labels = seen['labels']
        head_s = self._heads[0]
        pos = (labels >= 0) & (labels < head_s.num_classes)
        targets = labels.new_zeros(
            len(labels), 4, dtype=seen['deltas_s'].dtype)
        if 'pos_targets' in seen:
            targets[pos] = seen['pos_targets'].to(targets.dtype)
        return dict(
            cls=(seen['cls_s'], cls_t),
            reg=(self._class_deltas(seen['deltas_s'], labels, pos, head_s),
                 self._class_deltas(deltas_t, labels, pos, self._heads[1])),
            emb=(seen['emb_s'], emb_t),
            labels=labels,
            reg_targets=targets,
            reg_weights=pos.to(targets.dtype),
            rois=seen['rois'],
            # mmdet skips loss_bbox without positives: its factor is then
            # that of a box loss over every sampled RoI
            avg_factor=seen.get('avg_factor', len(labels)))

    @staticmethod
    def _class_deltas(deltas: Tensor, labels: Tensor, pos: Tensor,
                      head: nn.Module) -> Tensor:
        """``(N, 4)`` deltas of each RoI's own class (zeros off positives)."""
        if head.reg_class_agnostic:
            return deltas.view(len(deltas), 4) * pos[:, None]
        per_class = deltas.view(len(deltas), -1, 4)
        index = labels.clamp(max=per_class.shape[1] - 1)
        picked = per_class[torch.arange(len(deltas)), index]
        return picked * pos[:, None]
