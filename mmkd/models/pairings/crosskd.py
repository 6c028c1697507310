"""CrossKD: the student's head features through the teacher's head.

:class:`CrossHeadPairing` is what every head shares: the student's held
features, the teacher's statistics there, the rest of the teacher's head,
the student's labels and priors. :class:`CrossKDPairing` (GFL heads) is
here; RetinaNet, ATSS and FCOS heads are in
:mod:`~mmkd.models.pairings.crosskd_dense`.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import GFLHead
from torch import Tensor, nn

from mmkd.registry import MODELS
from ..distillers.taps import levels_of
from .base import BasePairing
from .gfl import _check_same, _flatten, record_labels

#: the two branches of a dense head, each a stack of ConvModules
BRANCHES = ('cls_convs', 'reg_convs')
#: why the student's and the teacher's heads must agree
SAME_HEADS = ('CrossKD runs the student\'s head features through the '
              'teacher\'s head and compares predictions at the student\'s '
              'priors')


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
    ``index`` of ``branch`` as the official ``forward_crosskd_single`` holds
    it: conv then norm, which mmcv's ConvModule then activates. With an
    in-place activation (the default ReLU) the held tensor is rectified in
    place, so it is the ConvModule's own output, and that is the module
    named (a tap must record a tensor nothing changes after it); otherwise
    the norm, or the conv without one."""
    conv = getattr(head, branch)[index]
    if getattr(conv, 'with_activation', False) and getattr(
            conv.activate, 'inplace', False):
        return f'{branch}.{index}'
    inner = conv.norm_name if getattr(conv, 'with_norm', False) else 'conv'
    return f'{branch}.{index}.{inner}'


def _coder_settings(coder: Any) -> Tuple:
    """A box coder's type and plain settings (means, stds, clipping)."""
    plain = (int, float, str, bool, tuple, list, type(None))
    return (type(coder).__name__, ) + tuple(
        sorted((k, v) for k, v in vars(coder).items()
               if isinstance(v, plain) and not k.startswith('_')))


def score_weights(cls_t: Tensor,
                  label_weights: Optional[Tensor] = None) -> Tensor:
    """The teacher's max class score per row (sigmoid of the max logit),
    0 where ``label_weights`` is 0: CrossKD's box-KD weights."""
    weights = cls_t.detach().max(dim=1).values.sigmoid()
    if label_weights is None:
        return weights
    return torch.where(label_weights == 0, weights.new_zeros(()), weights)


class CrossHeadPairing(BasePairing):
    """What CrossKD's pairings share, for one-stage dense heads whose
    classification and box branches are stacks of ConvModules.

    During the student's own ``loss()`` forward hooks record, per level, its
    output of conv ``reused_teacher_head_idx`` of each branch (the tensor the
    official ``forward_crosskd_single`` holds: conv, then norm; mmcv's
    ConvModule applies its ReLU in place, so with the default activation both
    hold the rectified map, the ConvModule's output), and a pre-hook on its
    ``loss_cls`` the labels, label weights and ``avg_factor`` its targets gave.
    The teacher's taps are the same held maps and its predictor outputs.
    :meth:`_predictions` standardises each student map per channel to the
    teacher's statistics there (:func:`align_scale`), applies ReLU, the
    teacher's remaining convs and predictors (:attr:`outputs`, the teacher's
    level :class:`Scale` on :attr:`scaled`, then :meth:`_finish`): the
    *cross-head* predictions, beside the teacher's own. The teacher's layers
    are frozen; the gradient flows through them into the student, never into
    the student's own predictors.

    Subclasses set :attr:`head_type` and :attr:`outputs` and build their
    records in :meth:`records`.

    Args:
        reused_teacher_head_idx (int): How many of the student's stacked
            convs run before the teacher's take over, from 1 to the number
            of stacked convs. Defaults to 3.
    """

    #: the mmdet head class (or a subclass) this pairing distils
    head_type: type = nn.Module
    #: each prediction: ``name: (branch, layer of the head)``
    outputs: Dict[str, Tuple[str, str]] = {}
    #: predictions that pass the level's ``scales[level]``, then ``float()``
    scaled: Tuple[str, ...] = ()

    def __init__(self, reused_teacher_head_idx: int = 3) -> None:
        super().__init__()
        if isinstance(reused_teacher_head_idx, bool) or not isinstance(
                reused_teacher_head_idx, int) or reused_teacher_head_idx < 1:
            raise ValueError(
                'reused_teacher_head_idx must be an int >= 1 (the student '
                'convs before the teacher head takes over), got '
                f'{reused_teacher_head_idx!r}')
        self.idx = reused_teacher_head_idx
        self.teacher_taps = ()
        self._seen: Dict[str, Any] = {}
        self._heads: Tuple[nn.Module, ...] = ()
        self._holds_t: Dict[str, str] = {}

    # ---- setup -------------------------------------------------------------
    def _head(self, model: nn.Module, side: str, key: str) -> nn.Module:
        """``model.bbox_head`` if this pairing distils it, else a TypeError
        naming the config key and the pairing that would fit."""
        head = getattr(model, 'bbox_head', None)
        layers = set(BRANCHES) | {layer for _, layer in self.outputs.values()}
        layers |= {'scales'} if self.scaled else set()
        if isinstance(head, self.head_type) and all(
                hasattr(head, name) for name in layers):
            return head
        fits = [
            f"'mmkd.{cls.__name__}'" for cls in _concrete(CrossHeadPairing)
            if head is not None and isinstance(head, cls.head_type)
        ]
        hint = f'; for this head use type={fits[0]}' if fits else ''
        raise TypeError(
            f'{key}.type: {type(self).__name__} needs one-stage detectors '
            f'whose bbox_head is a {self.head_type.__name__} (with '
            f'{sorted(layers)}); the {side} is {type(model).__name__} with '
            f'bbox_head {type(head).__name__}{hint}')

    def _check_heads(self, head_s: nn.Module, head_t: nn.Module,
                     key: str) -> None:
        """Refuse heads that cannot be paired location by location."""
        for head, side in ((head_s, 'student'), (head_t, 'teacher')):
            if self.idx > head.stacked_convs:
                raise ValueError(
                    f'{key}.reused_teacher_head_idx is {self.idx}, but the '
                    f'{side} head has {head.stacked_convs} stacked convs')
        same = [('feat_channels', lambda h: h.feat_channels),
                ('classes', lambda h: h.cls_out_channels),
                ('strides', lambda h: h.prior_generator.strides),
                ('anchors', lambda h: [
                    b.tolist()
                    for b in getattr(h.prior_generator, 'base_anchors', [])
                ])]
        if hasattr(head_s, 'bbox_coder'):
            same.append(('bbox_coder',
                         lambda h: _coder_settings(h.bbox_coder)))
        for what, read in same:
            _check_same(key, what, read(head_s), read(head_t), SAME_HEADS)

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        head_s = self._head(student, 'student', key)
        head_t = self._head(teacher, 'teacher', key)
        self._check_heads(head_s, head_t, key)
        self._heads = (head_s, head_t)
        self._holds_t = {
            branch: 'bbox_head.' + _hold_module(head_t, branch, self.idx - 1)
            for branch in BRANCHES
        }
        outputs = tuple(f'bbox_head.{layer}'
                        for name, (_, layer) in self.outputs.items()
                        if name not in self.scaled)
        scales = tuple(f'bbox_head.scales.{i}'
                       for i in range(len(head_t.scales))) if self.scaled \
            else ()
        self.teacher_taps = outputs + scales + tuple(self._holds_t.values())
        for branch in BRANCHES:
            self.hooks.post(
                head_s.get_submodule(_hold_module(head_s, branch,
                                                  self.idx - 1)),
                lambda m, a, out, branch=branch: self._on_hold(branch, out))
        self.hooks.pre(head_s.loss_cls, self._on_labels)

    # ---- hooks on the student's loss path ----------------------------------
    def _on_hold(self, branch: str, output: Tensor) -> None:
        if self.active:
            self._seen.setdefault(branch, []).append(output)

    def _on_labels(self, module, args, kwargs) -> None:
        if self.active:
            avg = record_labels(self._seen, module, args,
                                kwargs)['avg_factor']
            self._seen['avg_factor'] = 1.0 if avg is None else avg

    def reset(self) -> None:
        self._seen = {}

    # ---- the cross-head path -----------------------------------------------
    def _seen_loss(self) -> Dict[str, Any]:
        """What the hooks recorded, or an error if the student's head loss
        did not run."""
        if 'labels' not in self._seen or 'cls_convs' not in self._seen:
            raise RuntimeError(
                f'{type(self).__name__} saw no {self.head_type.__name__} '
                'loss: is the student such a detector in training?')
        return self._seen

    def _finish(self, level: int, preds: Dict[str, Tensor]) -> None:
        """Adjust one level's predictions in place, as the teacher head's
        ``forward_single`` does after its predictors (nothing here)."""

    def _predict(self, level: int, feats: Dict[str, Tensor]) -> Dict:
        """The teacher's predictors on one level's branch features."""
        head = self._heads[1]
        preds = {}
        for name, (branch, layer) in self.outputs.items():
            pred = getattr(head, layer)(feats[branch])
            if name in self.scaled:
                pred = head.scales[level](pred).float()
            preds[name] = pred
        self._finish(level, preds)
        return preds

    def _teacher_preds(self, teacher_records: Dict[str, Any], level: int,
                       name: str, layer: str) -> Tensor:
        if name in self.scaled:
            return levels_of(
                teacher_records[f'bbox_head.scales.{level}'])[0].float()
        return levels_of(teacher_records[f'bbox_head.{layer}'])[level]

    def _predictions(self, teacher_records: Dict[str, Any]) -> Tuple[Dict]:
        """``(cross, teacher)``: ``{name: [one tensor per level]}`` each."""
        seen, head = self._seen_loss(), self._heads[1]
        holds_t = {
            branch: levels_of(teacher_records[name])
            for branch, name in self._holds_t.items()
        }
        cross = {name: [] for name in self.outputs}
        teacher = {name: [] for name in self.outputs}
        for level in range(len(seen['cls_convs'])):
            feats = {}
            for branch in BRANCHES:
                feat_s = seen[branch][level]
                feat = F.relu(
                    align_scale(feat_s, holds_t[branch][level].to(
                        feat_s.dtype)))
                for conv in getattr(head, branch)[self.idx:]:
                    feat = conv(feat)
                feats[branch] = feat
            for name, pred in self._predict(level, feats).items():
                cross[name].append(pred)
            preds_t = {
                name: self._teacher_preds(teacher_records, level, name, layer)
                for name, (_, layer) in self.outputs.items()
            }
            self._finish(level, preds_t)
            for name, pred in preds_t.items():
                teacher[name].append(pred)
        return cross, teacher

    def _priors(self, levels: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Every row's prior (anchor box or point) and its level's stride,
        for the student's ``(N, K, H, W)`` ``levels``, flattened as
        :func:`~mmkd.models.pairings.gfl._flatten` with one row per prior.
        """
        generator = self._heads[0].prior_generator
        num_imgs = levels[0].shape[0]
        priors = generator.grid_priors([level.shape[-2:] for level in levels],
                                       device=levels[0].device)
        strides = [
            p.new_full((len(p) * num_imgs, ), float(stride[0]))
            for p, stride in zip(priors, generator.strides)
        ]
        return (torch.cat([p.repeat(num_imgs, 1) for p in priors]),
                torch.cat(strides))

    def _cls(self, cross: Dict, teacher: Dict) -> Tuple[Tensor, Tensor]:
        """``(cross, teacher)`` class logits, one row per prior."""
        classes = self._heads[0].cls_out_channels
        return tuple(
            _flatten(side['cls'], classes) for side in (cross, teacher))

    def _boxes(self, cross: Dict, teacher: Dict) -> Tuple[Tensor, Tensor]:
        """``(cross, teacher)`` boxes: both sides' ``reg`` decoded at the
        student's priors by the student's box coder (as officially)."""
        coder = self._heads[0].bbox_coder
        priors, _ = self._priors(teacher['cls'])
        return tuple(
            coder.decode(priors, _flatten(side['reg'], coder.encode_size))
            for side in (cross, teacher))


def _concrete(cls: type) -> List[type]:
    """The subclasses of ``cls`` that name a head type, recursively."""
    found = []
    for sub in cls.__subclasses__():
        if sub.head_type is not nn.Module:
            found.append(sub)
        found.extend(_concrete(sub))
    return found


@MODELS.register_module()
class CrossKDPairing(CrossHeadPairing):
    """The student's intermediate head features, run through the rest of the
    teacher's head, beside the teacher's own predictions (GFL heads).

    `CrossKD: Cross-Head Knowledge Distillation for Object Detection
    <https://arxiv.org/abs/2306.11369>`_ (Wang et al., CVPR 2024; official
    code `jbwang1997/CrossKD <https://github.com/jbwang1997/CrossKD>`_,
    ``CrossKDGFL``). In each branch of a GFL-family head (classification and
    box), the student's output of conv ``reused_teacher_head_idx`` (the
    held map of :class:`CrossHeadPairing`) is standardised per channel and
    given the teacher's per-channel mean and std at the same place
    (:func:`align_scale`), then ReLU, the teacher's remaining convs, its
    predictor and its level scale turn it into *cross-head* predictions.
    The teacher's layers are frozen; the gradient flows through them into
    the student. The distillation losses compare the cross-head predictions
    with the teacher's own, so they never pull on the student's own
    predictions directly.

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

    head_type = GFLHead
    outputs = dict(cls=('cls_convs', 'gfl_cls'), reg=('reg_convs', 'gfl_reg'))
    scaled = ('reg', )
    paired = ('cls', 'corners', 'boxes')
    plain = ('cls_weights', 'avg_factor', 'corner_weights',
             'corner_avg_factor', 'box_weights', 'box_avg_factor')

    def _check_heads(self, head_s: nn.Module, head_t: nn.Module,
                     key: str) -> None:
        _check_same(key, 'reg_max', head_s.reg_max, head_t.reg_max,
                    SAME_HEADS)
        super()._check_heads(head_s, head_t, key)

    def records(self, teacher_records: Dict[str, Any], inputs: Tensor,
                data_samples: Sequence) -> Dict[str, Any]:
        cross, teacher = self._predictions(teacher_records)
        head_s, head_t = self._heads
        label_weights = torch.cat(self._seen['label_weights']).reshape(-1)
        cls = self._cls(cross, teacher)
        weights = score_weights(cls[1], label_weights)
        bins = head_s.reg_max + 1
        flat_reg_s, flat_reg_t = _flatten(cross['reg']), _flatten(
            teacher['reg'])
        priors, strides = self._priors(teacher['cls'])
        centres = head_s.anchor_center(priors) / strides[:, None]
        boxes = tuple(
            head_t.bbox_coder.decode(centres, head_t.integral(reg))
            for reg in (flat_reg_s, flat_reg_t))
        total = weights.sum()
        return dict(
            cls=cls,
            cls_weights=label_weights,
            avg_factor=self._seen['avg_factor'],
            corners=(flat_reg_s.reshape(-1, bins),
                     flat_reg_t.reshape(-1, bins)),
            corner_weights=weights.repeat_interleave(4),
            corner_avg_factor=4 * total,
            boxes=boxes,
            box_weights=weights,
            box_avg_factor=total)
