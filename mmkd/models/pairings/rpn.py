"""The teacher's RPN on the student's sampled anchors."""
from typing import Any, Dict, List, Sequence

import torch
from torch import Tensor, nn

from mmkd.registry import MODELS
from .base import BasePairing
from .mmdet_calls import loss_inputs


def _rpn_head(model: nn.Module, side: str, key: str) -> nn.Module:
    head = getattr(model, 'rpn_head', None)
    if head is None or getattr(head, 'cls_out_channels', None) != 1:
        raise TypeError(
            f'{key}: RPNPairing needs detectors with a sigmoid RPN head '
            f'(e.g. Faster R-CNN); the {side} is {type(model).__name__} with '
            f'rpn_head {type(head).__name__}')
    return head


@MODELS.register_module()
class RPNPairing(BasePairing):
    """Student and teacher RPN outputs at the student's sampled anchors.

    The RPN level of `Learning Efficient Object Detection Models with
    Knowledge Distillation <https://papers.nips.cc/paper/6676>`_ (Chen et
    al., NeurIPS 2017). Forward pre-hooks on the student RPN's ``loss_cls``
    and ``loss_bbox`` record, level by level, the flattened predictions,
    labels, targets and weights its own loss received; the teacher's RPN
    head then runs on the teacher's FPN, and its outputs are flattened the
    same way, so anchor ``i`` means the same box on both sides (checked at
    build time: same strides, scales, ratios). Only the anchors the
    student's sampler kept (label weight > 0) are returned.

    The RPN scores objectness with one sigmoid logit ``z``; ``cls`` gives
    ``(z, 0)`` per anchor, two-class logits whose softmax is ``(sigmoid(z),
    1 - sigmoid(z))`` with background last, so the soft-label KD of the
    R-CNN applies unchanged. Paired records: ``cls`` ``(M, 2)``, ``reg``
    ``(M, 4)``; plain: ``labels`` ``(M,)`` (0 object, 1 background),
    ``reg_targets`` ``(M, 4)``, ``reg_weights`` ``(M,)``, ``avg_factor``,
    the normaliser of the student's RPN ``loss_bbox`` (mmdet: the sampled
    positives and negatives of the batch), for box losses added to it.

    Example:
        >>> sorted(RPNPairing().keys())
        ['avg_factor', 'cls', 'labels', 'reg', 'reg_targets', 'reg_weights']
    """

    teacher_taps = ('neck', )
    paired = ('cls', 'reg')
    plain = ('labels', 'reg_targets', 'reg_weights', 'avg_factor')

    def __init__(self) -> None:
        super().__init__()
        self._cls: List[tuple] = []
        self._reg: List[tuple] = []
        self._avg_factor = None
        self._teacher_head = ()

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        head_s = _rpn_head(student, 'student', key)
        head_t = _rpn_head(teacher, 'teacher', key)
        anchors = [(h.prior_generator.strides, h.prior_generator.scales,
                    h.prior_generator.ratios) for h in (head_s, head_t)]
        if any(not torch.equal(torch.as_tensor(a), torch.as_tensor(b))
               for a, b in zip(*anchors)):
            raise ValueError(
                f'{key}: student and teacher RPNs use different anchors '
                f'(strides, scales, ratios: {anchors[0]} vs {anchors[1]}); '
                'RPN-level pairing needs the same anchors on both sides')
        self._teacher_head = (head_t, )
        self.hooks.pre(head_s.loss_cls, self._on_cls)
        self.hooks.pre(head_s.loss_bbox, self._on_reg)

    def _on_cls(self, module, args, kwargs) -> None:
        if self.active:  # scores, labels, label weights
            call = loss_inputs(module, args, kwargs)
            self._cls.append((call['pred'], call['target'], call['weight']))

    def _on_reg(self, module, args, kwargs) -> None:
        if self.active:
            # deltas, targets, weights; the same avg_factor at every level
            call = loss_inputs(module, args, kwargs)
            self._reg.append((call['pred'], call['target'], call['weight']))
            self._avg_factor = call['avg_factor']

    def reset(self) -> None:
        self._cls, self._reg, self._avg_factor = [], [], None

    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        head_t = self._teacher_head[0]
        with self.teacher_forward(inputs.device, head_t):
            scores_t, deltas_t = head_t(teacher_records['neck'])
        if len(self._cls) != len(scores_t):
            raise RuntimeError(
                f'RPNPairing saw {len(self._cls)} RPN levels in the '
                f"student's loss and the teacher gives {len(scores_t)}")

        def flat(maps: Sequence[Tensor], width: int) -> Tensor:
            return torch.cat(
                [m.permute(0, 2, 3, 1).reshape(-1, width) for m in maps])

        score_s = torch.cat([c[0] for c in self._cls]).reshape(-1)
        labels = torch.cat([c[1] for c in self._cls])
        sampled = torch.cat([c[2] for c in self._cls]) > 0
        delta_s = torch.cat([r[0] for r in self._reg])
        targets = torch.cat([r[1] for r in self._reg])
        weights = torch.cat([r[2] for r in self._reg]).amax(dim=1)
        score_t, delta_t = flat(scores_t, 1).reshape(-1), flat(deltas_t, 4)

        def two_class(z: Tensor) -> Tensor:
            return torch.stack([z, torch.zeros_like(z)], dim=1)

        return dict(
            cls=(two_class(score_s[sampled]), two_class(score_t[sampled])),
            reg=(delta_s[sampled], delta_t[sampled]),
            labels=labels[sampled],
            reg_targets=targets[sampled],
            reg_weights=weights[sampled],
            avg_factor=(int(sampled.sum()) if self._avg_factor is None else
                        self._avg_factor))
