"""Train a student-friendly teacher (SFTN) for mmseg segmentors."""
import math
from typing import Dict, Optional, Sequence, Union

import torch.nn.functional as F
from mmdet.models.detectors import TwoStageDetector
from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor, nn

from mmkd.registry import MODELS
from mmkd.utils import rng_kept
from ..base import WrapperModel
from ..distillers.builder import build_model
from ..distillers.taps import TapRecorder
from ..losses.utils import check_temperature
from .det_branch import (DetectorBranch, check_det_student, check_detector,
                         dense_branch_kl, detector_loss, neck_stages,
                         two_stage_loss)
from .kl import student_branch_kl
from .seg_branch import (SegmentorBranch, check_decode_head_reach,
                         check_segmentor, check_student, labelled_pixels,
                         segmentor_loss)
from .stages import (backbone_stages, check_branch_points, check_stage_sizes,
                     stage_shapes)

#: ``T_i`` of the paper: a 1x1 convolution, BN and ReLU
DEFAULT_TRANSFORM = dict(
    kernel_size=1, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))


def check_weight(value, name: str) -> float:
    """``value`` if it is a finite number >= 0, else a ValueError."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value < math.inf:
        raise ValueError(f'{name} must be a finite number >= 0, got '
                         f'{name}={value!r}')
    return float(value)


def weighted(losses: Dict[str, Tensor], weight: float) -> Dict[str, Tensor]:
    """Every loss term (a key with 'loss') times ``weight``, per-level lists
    (mmdet's) item by item; metrics kept."""

    def times(value):
        if isinstance(value, (list, tuple)):
            return type(value)(v * weight for v in value)
        return value * weight

    return {k: times(v) if 'loss' in k else v for k, v in losses.items()}


@MODELS.register_module()
class SFTNTeacher(WrapperModel):
    """Train a teacher segmentor or dense detector jointly with student
    branches (SFTN).

    `Learning Student-Friendly Teacher Networks for Knowledge Distillation
    <https://arxiv.org/abs/2102.07650>`_ (Park et al., NeurIPS 2021). After
    the teacher's stage ``i`` (each of ``branch_points``) a student branch
    starts: ``T_i`` maps the teacher's features to the student's width,
    then come copies of the student's stages ``i + 1 .. K`` and heads
    (:class:`SegmentorBranch`), giving logits ``q_R^i``. The loss is::

        lambda_teacher * L_task(q_T, y)
        + sum_i lambda_kl * KL(q_R^i || q_T)   (student_branch_kl)
        + sum_i lambda_ce * L_task(q_R^i, y)

    with mmseg's own task losses (the auxiliary heads' included) under
    ``decode.*``/``aux.*`` for the teacher and ``branch<i>.decode.*``,
    ``branch<i>.aux.*`` and ``branch<i>.loss_kl`` for the branches. The KL
    is per pixel at the teacher's logit size (branch logits are resized
    bilinearly if theirs differs) over the labelled pixels only: mmseg pads
    label maps with ``ignore_index`` where it pads images, and the task
    losses skip the same pixels. Both the teacher and the branches are
    trained by every term. Validation, testing and inference run the
    teacher alone; export it with :class:`SFTNTeacherExportHook` or
    ``tools/export_sftn_teacher.py``.

    Dense detectors (mmdet single-stage: GFL, RetinaNet, FCOS, ATSS; the
    paper has classifiers only): a branch (:class:`DetectorBranch`) runs
    the student's later stages, then copies of its neck and head, whose
    losses come under ``branch<i>.loss_*`` with mmdet's keys. The neck also
    reads stages before ``i`` (an FPN's lower levels), where a branch has no
    student stage: each such teacher stage gets its own ``T``. The KL
    (:func:`dense_branch_kl`) is taken at every anchor point of every
    level: the Bernoulli KL of each class's sigmoid score, summed over the
    classes, plus for GFL the softmax KL of each side's box distribution.
    Two-stage detectors (Faster R-CNN): the teacher's RPN proposes and its
    RoI head samples RoIs as mmdet trains it; each branch runs a copy of
    the student's RoI head (no RPN) on those RoIs and their targets, and
    the KL is the softmax KL of the RoI class logits.

    Paper values: the loss weights and temperature could not be read here
    (only the paper's abstract and introduction were reachable), so the
    defaults are neutral choices of ours, not the paper's: every weight 1
    and ``temperature=1``. The KL carries KD's usual ``T^2`` factor and the
    branch terms are summed, not averaged, over the branches.

    Args:
        teacher (dict | str): The teacher's model config, or a config path
            (local, ``mmseg::`` or ``mmdet::``) whose ``model`` it is. It is
            trained.
        student (dict | str): The student's model config or config path,
            unchanged: branches copy its stages, neck and heads, initialised
            as its ``init_cfg`` says. Its backbone needs the teacher's number
            of stages and, at each stage a branch reads, the teacher's
            feature size; a segmentor student must have no neck; it must
            predict the teacher's classes (and for GFL, its bins).
        branch_points (Sequence[int], optional): Teacher stages (1-based)
            after which a branch starts. None starts one after every stage
            but the last, e.g. (1, 2, 3) for 4 stages. Defaults to None.
        transform (dict, optional): mmcv ``ConvModule`` arguments of each
            ``T_i`` besides the channels. None is the paper's 1x1
            convolution, BN and ReLU. Defaults to None.
        lambda_teacher (float): Weight of the teacher's task losses.
            Defaults to 1.0.
        lambda_kl (float): Weight of each branch's KL. Defaults to 3.0,
            the CIFAR-100 value of the one public reimplementation
            (kimyuji/SFTN_kd; no official code is public, and the paper's
            own values could not be read here).
        lambda_ce (float): Weight of each branch's task losses. Defaults to
            1.0.
        temperature (float): Softmax temperature of the KL. Defaults to 1.0.
        probe_size (int): Side of the image that checks the feature sizes
            at build time. Defaults to 64.
        data_preprocessor (dict, optional): The teacher's preprocessor when
            its model dict has none (mmengine's Runner passes a config's
            top-level one here). Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Example:
        >>> def pspnet(width):
        ...     return dict(type='mmseg.EncoderDecoder',
        ...         backbone=dict(type='mmseg.ResNetV1c', depth=18,
        ...             base_channels=width, stem_channels=width,
        ...             strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
        ...         decode_head=dict(type='mmseg.PSPHead', in_index=3,
        ...             in_channels=8 * width, channels=width,
        ...             num_classes=3))
        >>> model = SFTNTeacher(teacher=pspnet(16), student=pspnet(8))
        >>> list(model.branches)
        ['branch1', 'branch2', 'branch3']
        >>> model.branches['branch2'].transform.conv
        Conv2d(32, 16, kernel_size=(1, 1), stride=(1, 1), bias=False)
    """

    def __init__(self,
                 teacher: Union[dict, str],
                 student: Union[dict, str],
                 branch_points: Optional[Sequence[int]] = None,
                 transform: Optional[dict] = None,
                 lambda_teacher: float = 1.0,
                 lambda_kl: float = 3.0,
                 lambda_ce: float = 1.0,
                 temperature: float = 1.0,
                 probe_size: int = 64,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **unknown) -> None:
        if unknown:
            raise TypeError(
                f'model: unknown keys {sorted(unknown)} for mmkd.SFTNTeacher; '
                "valid keys are 'teacher', 'student', 'branch_points', "
                "'transform', 'lambda_teacher', 'lambda_kl', 'lambda_ce', "
                "'temperature', 'probe_size', 'data_preprocessor' and "
                "'init_cfg'")
        super().__init__(init_cfg=init_cfg)
        self.lambda_teacher = check_weight(lambda_teacher,
                                           'model.lambda_teacher')
        self.lambda_kl = check_weight(lambda_kl, 'model.lambda_kl')
        self.lambda_ce = check_weight(lambda_ce, 'model.lambda_ce')
        self.temperature = check_temperature(temperature, 'model.temperature')
        if isinstance(probe_size, bool) or not isinstance(
                probe_size, int) or probe_size < 32:
            raise ValueError(f'model.probe_size={probe_size!r}: give the '
                             'side of the probe image, an integer >= 32')
        if data_preprocessor is not None and isinstance(teacher, dict):
            teacher = dict(teacher)
            teacher.setdefault('data_preprocessor', data_preprocessor)
        self.teacher = build_model(teacher, 'model.teacher')
        #: 'seg' for an mmseg segmentor, 'det' for a dense mmdet detector
        self.task = ('seg' if isinstance(self.teacher, EncoderDecoder) else
                     'det')
        if self.task == 'seg':
            check_segmentor(self.teacher, 'model.teacher')
        else:
            check_detector(self.teacher, 'model.teacher')
        self.data_preprocessor = self.teacher.data_preprocessor
        # The branches draw from a side stream: the global RNG is where
        # building the teacher alone leaves it.
        with rng_kept():
            student_model = build_model(student, 'model.student')
            self._build_branches(student_model, branch_points, transform,
                                 probe_size)
        # Not a submodule: init_weights copies its initialised weights into
        # the branches, then lets it go.
        self._student = (student_model, )
        read = sorted({
            stage
            for branch in self.branches.values() for stage in (
                [int(i) for i in branch.transforms] if self.task == 'det'
                else [branch.point - 1])
        })
        #: the teacher stages (0-based) the branches read
        self.read_stages = read
        self.stage_taps = TapRecorder(
            self.teacher, [self.stage_names[i] for i in read],
            'model.branch_points')

    def _build_branches(self, student: nn.Module,
                        branch_points: Optional[Sequence[int]],
                        transform: Optional[dict], probe_size: int) -> None:
        if self.task == 'seg':
            check_student(student, self.teacher, 'model.student')
        else:
            check_det_student(student, self.teacher, 'model.student')
        self.stage_names = backbone_stages(self.teacher, 'model.teacher')
        names_s = backbone_stages(student, 'model.student')
        if len(names_s) != len(self.stage_names):
            raise ValueError(
                f'model.student: its backbone has {len(names_s)} stages and '
                f"the teacher's {len(self.stage_names)}; SFTN puts the "
                "student's stage i + 1 after the teacher's stage i, so both "
                'need as many stages')
        self.branch_points = check_branch_points(branch_points, len(names_s))
        transform = dict(DEFAULT_TRANSFORM if transform is None else transform)
        shapes_t = stage_shapes(self.teacher, self.stage_names, probe_size,
                                'model.teacher')
        shapes_s = stage_shapes(student, names_s, probe_size, 'model.student')
        self.branches = nn.ModuleDict()
        for point in self.branch_points:
            shape_t, shape_s = shapes_t[point - 1], shapes_s[point - 1]
            check_stage_sizes(point, shape_t, shape_s, probe_size)
            try:
                if self.task == 'seg':
                    check_decode_head_reach(student, point)
                    branch = SegmentorBranch(student, point,
                                             (shape_t[1], shape_s[1]),
                                             transform)
                else:
                    # the branch point, and the lower stages the neck reads
                    out_indices = student.backbone.out_indices
                    stages = {point - 1} | {
                        out_indices[i] for i in neck_stages(student)
                        if out_indices[i] < point - 1
                    }
                    for stage in stages:
                        check_stage_sizes(stage + 1, shapes_t[stage],
                                          shapes_s[stage], probe_size)
                    branch = DetectorBranch(
                        student, point, {
                            i: (shapes_t[i][1], shapes_s[i][1])
                            for i in stages
                        }, transform)
                self.branches[f'branch{point}'] = branch
            except TypeError as err:
                raise TypeError(f'model.transform={transform!r}: {err}; give '
                                "mmcv ConvModule's arguments") from err
        self._branch_norm_eval = getattr(student.backbone, 'norm_eval', False)

    def init_weights(self) -> None:
        """The teacher from its own ``init_cfg`` (e.g. a pretrained
        backbone); each branch's stages and heads from the student's
        ``init_cfg``, the student initialised once (from a side stream) and
        copied into every branch; ``T_i`` as mmcv's ConvModule initialises
        itself."""
        super().init_weights()
        if self._student is None:
            return
        student = self._student[0]
        with rng_kept():
            student.init_weights()
        for branch in self.branches.values():
            branch.copy_student(student)
        self._student = None

    def train(self, mode: bool = True) -> 'SFTNTeacher':
        """Train mode; branch stages keep BN frozen if the student's
        backbone has ``norm_eval=True``."""
        super().train(mode)
        if mode and self._branch_norm_eval:
            for branch in self.branches.values():
                for module in branch.backbone.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.eval()
        return self

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """The teacher's weighted task losses, and each branch's task
        losses and KL (see the class docstring)."""
        if self.task == 'det':
            return self._detector_loss(inputs, data_samples)
        with self.stage_taps.recording():
            feats = self.teacher.extract_feat(inputs)
            stages = self.stage_taps.collect()
        losses_t, logits_t = segmentor_loss(self.teacher, feats, data_samples)
        losses = weighted(losses_t, self.lambda_teacher)
        valid = labelled_pixels(data_samples, logits_t.shape[2:],
                                self.teacher.decode_head.ignore_index)
        for name, branch in self.branches.items():
            stage = self.stage_names[branch.point - 1]
            losses_r, logits_r = branch.loss(stages[stage], data_samples)
            for key, value in weighted(losses_r, self.lambda_ce).items():
                losses[f'{name}.{key}'] = value
            losses[f'{name}.loss_kl'] = self.lambda_kl * student_branch_kl(
                self._resized(logits_r, logits_t), logits_t,
                self.temperature, valid)
        return losses

    def _detector_loss(self, inputs: Tensor,
                       data_samples: list) -> Dict[str, Tensor]:
        with self.stage_taps.recording():
            feats = self.teacher.backbone(inputs)
            records = self.stage_taps.collect()
        stages = {i: records[self.stage_names[i]] for i in self.read_stages}
        if isinstance(self.teacher, TwoStageDetector):
            # the branches' RoI heads on the teacher's sampled RoIs
            losses_t, sampling, cls_t = two_stage_loss(
                self.teacher, feats, data_samples)

            def branch_terms(branch: DetectorBranch) -> tuple:
                losses_r, cls_r = branch.roi_loss(stages, sampling)
                return losses_r, student_branch_kl(cls_r, cls_t,
                                                   self.temperature)
        else:
            losses_t, outs_t = detector_loss(self.teacher, feats,
                                             data_samples)

            def branch_terms(branch: DetectorBranch) -> tuple:
                losses_r, outs_r = branch.loss(stages, data_samples)
                return losses_r, dense_branch_kl(self.teacher.bbox_head,
                                                 outs_r, outs_t,
                                                 self.temperature)

        losses = weighted(losses_t, self.lambda_teacher)
        for name, branch in self.branches.items():
            losses_r, kl = branch_terms(branch)
            for key, value in weighted(losses_r, self.lambda_ce).items():
                losses[f'{name}.{key}'] = value
            losses[f'{name}.loss_kl'] = self.lambda_kl * kl
        return losses

    def _resized(self, logits_r: Tensor, logits_t: Tensor) -> Tensor:
        if logits_r.shape[2:] == logits_t.shape[2:]:
            return logits_r
        return F.interpolate(
            logits_r,
            size=logits_t.shape[2:],
            mode='bilinear',
            align_corners=self.teacher.align_corners)

    def seg_logits(self, inputs: Tensor) -> Dict[str, Tensor]:
        """The teacher's (``'teacher'``) and each branch's decode-head
        logits, as :meth:`loss` computes them."""
        with self.stage_taps.recording():
            feats = self.teacher.extract_feat(inputs)
            stages = self.stage_taps.collect()
        logits = dict(teacher=self.teacher.decode_head(feats))
        for name, branch in self.branches.items():
            stage = self.stage_names[branch.point - 1]
            logits[name] = branch.decode_head(branch(stages[stage]))
        return logits

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """The teacher's predictions."""
        return self.teacher.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """The teacher's raw outputs."""
        return self.teacher._forward(inputs, data_samples)
