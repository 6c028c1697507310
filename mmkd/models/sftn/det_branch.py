"""SFTN's student branch for mmdet dense (single-stage) detectors, and the
KL between a branch's and the teacher's per-location predictions."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import GFLHead
from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from torch import Tensor, nn

from ..losses.utils import check_temperature

Outputs = Tuple[List[Tensor], ...]


def check_detector(model: nn.Module, key: str) -> None:
    """Fail unless ``model`` is an mmdet detector SFTN can branch: a
    single-stage detector, or a two-stage one with a standard RoI head
    (boxes only), each with a neck."""
    if isinstance(model, TwoStageDetector):
        roi_head = model.roi_head
        if not isinstance(roi_head, StandardRoIHead) or roi_head.with_mask \
                or not model.with_rpn:
            raise NotImplementedError(
                f'{key}: SFTN for two-stage detectors needs an RPN and a '
                'StandardRoIHead with boxes only (Faster R-CNN), got '
                f'{type(roi_head).__name__}'
                f'{" with masks" if roi_head.with_mask else ""}')
    elif not isinstance(model, SingleStageDetector):
        raise NotImplementedError(
            f'{key}: SFTN is implemented for mmseg EncoderDecoder '
            'segmentors, mmdet single-stage detectors (GFL, RetinaNet, '
            'FCOS, ATSS) and Faster R-CNN, got '
            f'{type(model).__name__}')
    if not model.with_neck:
        raise NotImplementedError(
            f'{key}: SFTN for detectors expects a neck (an FPN) between the '
            'backbone and the head')


def check_det_student(student: nn.Module, teacher: nn.Module,
                      key: str) -> None:
    """Fail unless the student is a detector of the teacher's kind whose
    head predicts what the teacher's does: the same classes, and for GFL
    the same bins and anchors."""
    check_detector(student, key)
    if isinstance(teacher, TwoStageDetector):
        if not isinstance(student, TwoStageDetector):
            raise ValueError(
                f'{key}: the teacher is a two-stage detector and the student '
                f'a {type(student).__name__}; the branch runs the student\'s '
                "RoI head on the teacher's sampled RoIs")
        classes_s = student.roi_head.bbox_head.num_classes
        classes_t = teacher.roi_head.bbox_head.num_classes
        if classes_s != classes_t:
            raise ValueError(
                f'{key}.roi_head.bbox_head: the student predicts {classes_s} '
                f'classes and the teacher {classes_t}; give both the same '
                'num_classes')
        return
    head_s, head_t = getattr(student, 'bbox_head', None), teacher.bbox_head
    if type(head_s) is not type(head_t):
        raise ValueError(
            f'{key}.bbox_head: the student has a {type(head_s).__name__} '
            f'and the teacher a {type(head_t).__name__}; the KL compares '
            'the outputs of one kind of head')
    if head_s.cls_out_channels != head_t.cls_out_channels:
        raise ValueError(
            f'{key}.bbox_head: the student predicts '
            f'{head_s.cls_out_channels} class scores and the teacher '
            f'{head_t.cls_out_channels}; give both the same num_classes')
    if getattr(head_s, 'reg_max', None) != getattr(head_t, 'reg_max', None):
        raise ValueError(
            f'{key}.bbox_head.reg_max: the student has {head_s.reg_max} and '
            f'the teacher {head_t.reg_max}; the box distributions are '
            'compared bin by bin')
    anchors_s = getattr(head_s, 'num_base_priors', 1)
    if anchors_s != getattr(head_t, 'num_base_priors', 1):
        raise ValueError(
            f'{key}.bbox_head: the student has {anchors_s} anchors per '
            f'position and the teacher {head_t.num_base_priors}; give both '
            'the same anchor generator')


def neck_stages(detector: SingleStageDetector) -> List[int]:
    """The backbone outputs (indices into ``out_indices``) the neck reads:
    an FPN's ``start_level`` to ``backbone_end_level``, else all."""
    neck = detector.neck
    count = len(detector.backbone.out_indices)
    start = getattr(neck, 'start_level', 0)
    end = getattr(neck, 'backbone_end_level', count)
    return list(range(start, end))


def detector_loss(model: SingleStageDetector, feats: Sequence[Tensor],
                  data_samples: list) -> Tuple[Dict[str, Tensor], Outputs]:
    """``SingleStageDetector.loss`` on backbone outputs, and the head's raw
    outputs it computes on the way."""
    outs = model.bbox_head(model.neck(tuple(feats)))
    gt, gt_ignore, img_metas = unpack_gt_instances(data_samples)
    losses = model.bbox_head.loss_by_feat(*outs, gt, img_metas, gt_ignore)
    return losses, outs


def two_stage_loss(model: TwoStageDetector, feats: Sequence[Tensor],
                   data_samples: list) -> Tuple[Dict[str, Tensor], list,
                                                Tensor]:
    """``TwoStageDetector.loss`` on backbone outputs (RPN, then the RoI
    head on the RoIs it samples), with the sampling results and the RoI
    class logits it computes on the way."""
    x = model.neck(tuple(feats))
    proposal_cfg = model.train_cfg.get('rpn_proposal', model.test_cfg.rpn)
    rpn_samples = copy.deepcopy(data_samples)
    for sample in rpn_samples:  # the RPN is class-agnostic
        sample.gt_instances.labels = torch.zeros_like(
            sample.gt_instances.labels)
    rpn_losses, proposals = model.rpn_head.loss_and_predict(
        x, rpn_samples, proposal_cfg=proposal_cfg)
    losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k else k): v
              for k, v in rpn_losses.items()}
    roi_head = model.roi_head
    gt, gt_ignore, _ = unpack_gt_instances(data_samples)
    sampling = []
    for i, results in enumerate(proposals):
        results.priors = results.pop('bboxes')
        assigned = roi_head.bbox_assigner.assign(results, gt[i], gt_ignore[i])
        sampling.append(
            roi_head.bbox_sampler.sample(
                assigned, results, gt[i],
                feats=[level[i][None] for level in x]))
    bbox = roi_head.bbox_loss(x, sampling)
    losses.update(bbox['loss_bbox'])
    return losses, sampling, bbox['cls_score']


def _bernoulli_kl(logits_r: Tensor, logits_t: Tensor, T: float) -> Tensor:
    """KL of the teacher's per-class sigmoid probabilities against the
    branch's, summed over the classes: ``(positions, )``."""
    log_r, log_r_neg = F.logsigmoid(logits_r / T), F.logsigmoid(-logits_r / T)
    log_t, log_t_neg = F.logsigmoid(logits_t / T), F.logsigmoid(-logits_t / T)
    p_t = log_t.exp()
    return (p_t * (log_t - log_r) + (1 - p_t) * (log_t_neg - log_r_neg)).sum(1)


def _softmax_kl(logits_r: Tensor, logits_t: Tensor, T: float) -> Tensor:
    """KL of softmax distributions over dim 1, summed over it."""
    log_r = F.log_softmax(logits_r / T, dim=1)
    log_t = F.log_softmax(logits_t / T, dim=1)
    return (log_t.exp() * (log_t - log_r)).sum(1)


def _flat(maps: Sequence[Tensor], channels: int) -> Tensor:
    """``[(N, A * C, H, W)]`` levels as ``(N * A * H * W summed, C)``."""
    return torch.cat([
        m.reshape(m.shape[0], -1, channels, *m.shape[2:]).movedim(2, -1)
        .reshape(-1, channels) for m in maps
    ])


def _sides(maps: Sequence[Tensor], bins: int) -> Tensor:
    """GFL's ``[(N, 4 * bins, H, W)]`` levels as ``(positions, bins, 4)``,
    positions in :func:`_flat`'s order (one anchor per position)."""
    return torch.cat([
        m.reshape(m.shape[0], 4, bins, *m.shape[2:]).permute(0, 3, 4, 2, 1)
        .reshape(-1, bins, 4) for m in maps
    ])


def dense_branch_kl(head: nn.Module,
                    outs_r: Outputs,
                    outs_t: Outputs,
                    temperature: float = 1.0) -> Tensor:
    """``T^2`` times the mean per-location KL between a branch's and the
    teacher's dense predictions, over every anchor point of every level.

    - classification: sigmoid heads (GFL, RetinaNet, FCOS, ATSS) predict
      per-class probabilities, so the KL is the Bernoulli KL of each class,
      summed over the classes (the softmax KL of the paper's classifiers,
      for independent classes);
    - box distributions (GFL): the softmax KL over each side's bins, summed
      over the four sides, added to the classification term.

    Nothing is detached: SFTN trains the teacher and the branch with it.

    Args:
        head (nn.Module): The teacher's head (its class count and, for GFL,
            its bins).
        outs_r (tuple): The branch head's outputs (``cls_scores``,
            ``bbox_preds``, ...), lists over levels.
        outs_t (tuple): The teacher head's outputs, the same shapes.
        temperature (float): Softmax/sigmoid temperature. Defaults to 1.0.

    Example:
        >>> from mmdet.models.dense_heads import RetinaHead
        >>> head = RetinaHead(num_classes=2, in_channels=4, feat_channels=4,
        ...     stacked_convs=1, anchor_generator=dict(type='AnchorGenerator',
        ...     octave_base_scale=4, scales_per_octave=1, ratios=[1.0],
        ...     strides=[8]))
        >>> t = (torch.zeros(1, 2, 3, 3), ), (torch.zeros(1, 4, 3, 3), )
        >>> float(dense_branch_kl(head, t, t))
        0.0
    """
    T = check_temperature(temperature)
    cls_r, cls_t = outs_r[0], outs_t[0]
    classes = head.cls_out_channels
    kl = _bernoulli_kl(_flat(cls_r, classes), _flat(cls_t, classes), T)
    if isinstance(head, GFLHead):
        bins = head.reg_max + 1
        box_r, box_t = _sides(outs_r[1], bins), _sides(outs_t[1], bins)
        kl = kl + _softmax_kl(box_r, box_t, T).sum(1)
    return T * T * kl.mean()


class DetectorBranch(nn.Module):
    """One student branch of SFTN for a single-stage detector.

    After the teacher's stage ``i``, ``T_i`` maps the teacher's features to
    the student's width and copies of the student's stages ``i + 1 .. K``
    run on them. The neck also reads stages before ``i`` (an FPN's lower
    levels): each such teacher stage gets its own transform to the
    student's width, since a branch has no student stage there. Then come
    copies of the student's neck and head, whose outputs are ``q_R^i``.

    Args:
        student (SingleStageDetector): The student, copied from.
        point (int): The teacher stage ``i`` the branch starts after
            (1-based).
        channels (dict): ``{stage index (0-based): (teacher channels,
            student channels)}`` of every stage up to ``i`` the branch
            transforms: stage ``i - 1`` and the lower ones the neck reads.
        transform (dict): Keyword arguments of mmcv's ``ConvModule`` for
            each transform besides the channels.
    """

    def __init__(self, student: SingleStageDetector, point: int,
                 channels: Dict[int, Tuple[int, int]],
                 transform: dict) -> None:
        super().__init__()
        self.point = point
        self.out_indices = tuple(student.backbone.out_indices)
        self.transforms = nn.ModuleDict({
            str(stage): ConvModule(*pair, **transform)
            for stage, pair in sorted(channels.items())
        })
        stages = student.backbone.res_layers
        self.backbone = nn.ModuleDict({
            name: copy.deepcopy(getattr(student.backbone, name))
            for name in stages[point:]
        })
        self.neck = copy.deepcopy(student.neck)
        #: which head the branch has: a dense head, or an RoI head run on
        #: the teacher's sampled RoIs (no RPN of its own)
        self.head_name = ('roi_head' if isinstance(student, TwoStageDetector)
                          else 'bbox_head')
        setattr(self, self.head_name,
                copy.deepcopy(getattr(student, self.head_name)))

    def forward(self, stages_t: Dict[int, Tensor]) -> List[Optional[Tensor]]:
        """The student's backbone outputs from the teacher's stage outputs
        (by 0-based stage), None where nothing reads them."""
        outs = {
            int(stage): transform(stages_t[int(stage)])
            for stage, transform in self.transforms.items()
        }
        x = outs[self.point - 1]
        for offset, stage in enumerate(self.backbone.values()):
            x = stage(x)
            outs[self.point + offset] = x
        return [outs.get(i) for i in self.out_indices]

    def loss(self, stages_t: Dict[int, Tensor],
             data_samples: list) -> Tuple[Dict[str, Tensor], Outputs]:
        """The branch's detection losses (mmdet's keys) and head outputs."""
        return detector_loss(self, self(stages_t), data_samples)

    def roi_loss(self, stages_t: Dict[int, Tensor],
                 sampling: list) -> Tuple[Dict[str, Tensor], Tensor]:
        """Two-stage: the branch's RoI head losses on the teacher's sampled
        RoIs (with their targets), and its RoI class logits."""
        x = self.neck(tuple(self(stages_t)))
        bbox = self.roi_head.bbox_loss(x, sampling)
        return bbox['loss_bbox'], bbox['cls_score']

    def copy_student(self, student: SingleStageDetector) -> None:
        """Load the student's (initialised) weights into the copies."""
        for name, stage in self.backbone.items():
            stage.load_state_dict(getattr(student.backbone, name).state_dict())
        self.neck.load_state_dict(student.neck.state_dict())
        getattr(self, self.head_name).load_state_dict(
            getattr(student, self.head_name).state_dict())
