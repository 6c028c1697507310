"""One distiller for mmdet detectors and mmseg segmentors."""
import warnings
from typing import Dict, List, Optional, Union

import torch
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from mmkd.registry import MODELS
from mmkd.utils import rng_kept
from mmkd.utils.fast_teacher import (FOLD_TOLERANCE, TeacherGraphs,
                                     find_fold_pairs, fold_error)
from mmkd.utils.fast_teacher import resolve as resolve_switch
from mmkd.utils.precision import autocast_dtype, cast_floats, teacher_forward
from ..adapters import AdapterDict, ConvAdapter, channel_dim, resize_like
from ..base import WrapperModel
from ..losses.utils import TeacherWidth
from ..pairings.base import BasePairing
from .builder import build_model, build_teacher, input_converter
from .sources import Step, resolve
from .specs import build_registered, parse_losses, tap_names
from .taps import TapRecorder, TapsComplete, levels_of

# Losses of other files that compare distributions over dim 1 (classes).
DISTRIBUTION_LOSSES = ('PixelWiseKDLoss', 'KnowledgeDistillationKLDivLoss')


def _inner(loss: nn.Module) -> nn.Module:
    # a wrapper such as TeKAP answers for the loss it wraps
    while hasattr(loss, 'loss') and isinstance(loss.loss, nn.Module):
        loss = loss.loss
    return loss


def channel_free(loss: nn.Module) -> bool:
    """Whether a loss compares maps of any widths (e.g. affinities)."""
    return getattr(_inner(loss), 'channel_free', False)


def compares_distributions(loss: nn.Module) -> bool:
    """Whether a loss compares distributions over dim 1 (classes, or box-edge
    bins), entry by entry: no adapter may remap them."""
    loss = _inner(loss)
    return getattr(loss, 'compares_distributions',
                   type(loss).__name__ in DISTRIBUTION_LOSSES)


def bare(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper, or the module itself."""
    return module.module if is_model_wrapper(module) else module


def distiller_of(model: nn.Module) -> nn.Module:
    """The runner's model without its DDP wrapper, and without a wrapper
    that trains it (:class:`~mmkd.models.NetAug`): the distiller, for the
    hooks that drive one."""
    model = bare(model)
    return getattr(model, 'wrapped', model)


def probe_data_samples(model: nn.Module, size: int) -> list:
    """One empty data sample of the model's library, for a probe forward."""
    library = type(model).__module__.split('.')[0]
    if library == 'mmseg':
        from mmseg.structures import SegDataSample as Sample
    elif library == 'mmdet':
        from mmdet.structures import DetDataSample as Sample
    else:
        return None
    shape = (size, size)
    return [
        Sample(
            metainfo=dict(
                img_shape=shape,
                ori_shape=shape,
                pad_shape=shape,
                batch_input_shape=shape,
                scale_factor=(1.0, 1.0),
                flip=False))
    ]


@MODELS.register_module()
class SingleTeacherDistiller(WrapperModel):
    """Train an mmdet detector or mmseg segmentor with one frozen teacher.

    The teacher is built from its own config and checkpoint, frozen, kept in
    eval mode and out of the module tree: it is in no optimizer, no DDP
    gradient sync and no training checkpoint. In :meth:`loss` it runs under
    ``torch.no_grad()`` (in bf16 on CUDA by default, ``teacher.precision``)
    and stops as soon as every teacher tap has been
    recorded, so a neck hint costs a backbone and a neck, never a teacher
    loss, label assignment or post-processing. The student then runs its own
    ``loss()``; each distillation loss is added under ``distill.<name>``.
    Validation, testing and inference run the student only.

    A student tap whose channels differ from its teacher tap's gets a
    trainable 1x1 :class:`ConvAdapter` (always, with ``adapter=True``, as in
    Chen et al., NeurIPS 2017). Channels are read off one probe forward of
    both models at build time, which also checks that every tap runs.

    Args:
        student (dict | str): The student's model config, or a config path
            (local or ``mmdet::``/``mmseg::``) whose ``model`` it is.
        teacher (dict): ``dict(config=..., checkpoint=..., strict=True)``:
            the teacher's config path (or model dict), the path or URL of its
            trained weights (None keeps untrained weights, with a warning)
            and whether every checkpoint key must fit; optionally
            ``precision``, that of the teacher's forward: 'auto' (bf16 or
            fp16 autocast on CUDA, full precision on CPU), 'bf16', 'fp16'
            or 'fp32' (see :mod:`mmkd.utils.precision`).
        losses (dict): ``{name: loss_cfg}``. Each ``loss_cfg`` is a loss
            config plus ``student`` and ``teacher`` (dotted module names to
            tap, e.g. ``'neck'``, or paired records ``'<pairing>.<key>'``),
            optionally ``adapter`` ('auto', True or False; defaults to
            'auto') and ``inputs`` (``{argument: source}`` for further
            arguments: plain pairing records ``'<pairing>.<key>'``, batch
            fields ``'batch.<field>'`` or constants ``'const.<name>'``; see
            :mod:`mmkd.models.distillers.sources`).
        pairings (dict, optional): ``{name: pairing_cfg}``, see
            :class:`BasePairing` (e.g. the teacher's RoI head on the
            student's proposals). Defaults to None.
        probe_size (int): Side of the square image of the build-time probe.
            Defaults to 128.
        data_preprocessor (dict, optional): The student's data
            preprocessor when its model dict has none (mmengine's Runner
            passes a config's top-level ``data_preprocessor``, as mmseg's
            configs have, here). The distiller always uses the student's.
            Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Example:
        >>> student = dict(type='mmseg.EncoderDecoder',
        ...     backbone=dict(type='mmseg.MobileNetV2', widen_factor=0.25,
        ...                   out_indices=(4, 6)),
        ...     decode_head=dict(type='mmseg.FCNHead', in_channels=80,
        ...                      channels=8, num_classes=3, num_convs=1,
        ...                      concat_input=False))
        >>> distiller = SingleTeacherDistiller(
        ...     student=student,
        ...     teacher=dict(config=dict(student, decode_head=dict(
        ...         student['decode_head'], channels=16)), checkpoint=None),
        ...     losses=dict(hint=dict(type='FeatureHintLoss',
        ...         student='decode_head.convs', teacher='decode_head.convs')))
        >>> distiller.adapters['hint']
        ConvAdapter(
          (convs): ModuleList(
            (0): Conv2d(8, 16, kernel_size=(1, 1), stride=(1, 1))
          )
        )
    """

    #: one optimizer: plain DDP (mmkd.DistillerDataParallel reads this)
    separate_ddp = False

    def __init__(self,
                 student: Union[dict, str],
                 teacher: dict,
                 losses: Dict[str, dict],
                 pairings: Optional[Dict[str, dict]] = None,
                 probe_size: int = 128,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if data_preprocessor is not None and isinstance(student, dict):
            student = dict(student)
            student.setdefault('data_preprocessor', data_preprocessor)
        self.student = build_model(student, 'model.student')
        self.data_preprocessor = self.student.data_preprocessor
        # Everything mmkd adds draws from a side stream: the global RNG is
        # where building the student alone leaves it (see init_weights).
        with rng_kept():
            self._build_parts(teacher, losses, pairings or {}, probe_size)
        # Per-loss factors set by DistillLossWeightHook; 0 skips the loss.
        self.loss_multipliers = {name: 1.0 for name in self.loss_specs}
        # Values set by hooks (e.g. ND's teacher centroids), 'const.<name>'.
        self.constants: Dict[str, Tensor] = {}

    def _build_parts(self, teacher: dict, losses: Dict[str, dict],
                     pairings: Dict[str, dict], probe_size: int) -> None:
        """The teacher, pairings, losses, taps and adapters."""
        teacher_model = build_teacher(teacher, 'model.teacher')
        self.teacher_precision = teacher.get('precision', 'auto')
        # fold_bn / channels_last / cuda_graph (mmkd.utils.fast_teacher)
        self.teacher_speed = dict(
            fold_bn=teacher.get('fold_bn', 'auto'),
            channels_last=teacher.get('channels_last', 'auto'),
            cuda_graph=teacher.get('cuda_graph', False))
        # A tuple keeps the teacher out of parameters(), state_dict() and DDP.
        self._teacher = (teacher_model, )
        self._to_teacher_inputs = input_converter(self.student, teacher_model)
        self.pairings = self._build_pairings(pairings)
        for pairing in self.pairings.values():
            pairing.precision = self.teacher_precision
        record_keys = {
            n: (p.paired, p.plain)
            for n, p in self.pairings.items()
        }
        self.loss_specs, self.distill_losses = parse_losses(
            losses, self.student, teacher_model, record_keys)
        self.student_taps = TapRecorder(
            self.student, sorted(tap_names(self.loss_specs, 'student',
                                           record_keys)), 'model.losses')
        self.teacher_taps = TapRecorder(
            teacher_model,
            sorted(tap_names(self.loss_specs, 'teacher', record_keys)
                   | {t for p in self.pairings.values()
                      for t in p.teacher_taps}), 'model.losses')
        self.adapters = self._build_adapters(probe_size)

    def init_weights(self) -> None:
        """The student first, from the global RNG exactly as plain training
        with the same seed initialises it; then mmkd's own modules (adapters,
        trainable loss parts) from a side stream, so that training draws
        (dropout, sampling) follow plain training's too. A distiller whose
        losses all weigh 0 then trains the student that plain training
        does, and a method's gain over the baseline is not a different
        initialisation's."""
        student = bare(self.student)  # DDP-wrapped with separate_ddp
        if not getattr(student, 'is_init', False):
            student.init_weights()
        with rng_kept():
            super().init_weights()

    def remove_hooks(self) -> None:
        """Tear down: remove every hook the taps and pairings registered on
        the student and the teacher, which are then plain models again (the
        distiller computes no distillation loss afterwards)."""
        self.student_taps.remove()
        self.teacher_taps.remove()
        for pairing in self.pairings.values():
            pairing.remove_hooks()

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a submodule: see the class docstring)."""
        return self._teacher[0]

    def _build_pairings(self, cfgs: Dict[str, dict]) -> nn.ModuleDict:
        pairings = nn.ModuleDict()
        top = {n.split('.')[0] for n, _ in self.student.named_modules() if n}
        for name, cfg in cfgs.items():
            key = f'model.pairings.{name}'
            if not name.isidentifier() or name in top or name in ('const',
                                                                  'batch'):
                raise ValueError(
                    f'{key}: pairing names must be identifiers other than '
                    "'const', 'batch' and the student's top-level modules "
                    f'{sorted(top)}')
            pairing = build_registered(dict(cfg), key, kind='pairing')
            if not isinstance(pairing, BasePairing):
                raise TypeError(f'{key}.type: {type(pairing).__name__} is not '
                                'a pairing (mmkd.models.BasePairing)')
            pairing.setup(self.student, self.teacher, key)
            pairings[name] = pairing
        return pairings

    def _probe(self, model: nn.Module, taps: TapRecorder,
               size: int) -> Dict[str, List[Tensor]]:
        """Run one small forward; return each tap's levels and count calls."""
        was_training = model.training
        model.eval()
        inputs = torch.rand(1, 3, size, size)
        with torch.no_grad(), taps.recording():
            model._forward(inputs, probe_data_samples(model, size))
            taps.expected_calls = {n: len(r) for n, r in taps.records.items()}
            records = taps.collect()
        model.train(was_training)
        return {name: levels_of(out) for name, out in records.items()}

    def _build_adapters(self, probe_size: int) -> AdapterDict:
        shapes_s = self._probe(self.student, self.student_taps, probe_size)
        shapes_t = self._probe(self.teacher, self.teacher_taps, probe_size)
        #: every tap's level shapes on the probe, by side and module name
        self.tap_shapes = {
            side: {n: [f.shape for f in levels]
                   for n, levels in shapes.items()}
            for side, shapes in (('student', shapes_s), ('teacher', shapes_t))
        }
        channels = {}
        for name, spec in self.loss_specs.items():
            head = spec.student.split('.')[0]
            if head in self.pairings:
                pairing = self.pairings[head]
                found = pairing.channels(self.student, self.teacher).get(
                    spec.student[len(head) + 1:])
                if found is not None:
                    channels[name] = found
                continue
            levels_s, levels_t = shapes_s[spec.student], shapes_t[spec.teacher]
            if len(levels_s) != len(levels_t):
                raise ValueError(
                    f'model.losses.{name}: student tap {spec.student!r} gives '
                    f'{len(levels_s)} levels, teacher tap {spec.teacher!r} '
                    f'gives {len(levels_t)}; tap outputs with as many levels')
            loss = _inner(self.distill_losses[name])
            if hasattr(loss, 'check_shapes'):
                # losses on fixed-layout tensors (attention maps) check their
                # own shapes and take no adapter
                loss.check_shapes([f.shape for f in levels_s],
                                  [f.shape for f in levels_t],
                                  f'model.losses.{name}')
                continue
            for f_s, f_t in zip(levels_s, levels_t):
                self._check_layouts(name, f_s, f_t)
            channels[name] = ([f.shape[channel_dim(f)] for f in levels_s],
                              [f.shape[channel_dim(f)] for f in levels_t])
        adapters = AdapterDict()
        for name, (ch_s, ch_t) in channels.items():
            spec = self.loss_specs[name]
            loss = _inner(self.distill_losses[name])
            if isinstance(loss, TeacherWidth):
                # layers at the teacher's width (MGD's generator)
                if loss.expected_channels is None and len(set(ch_t)) == 1:
                    loss.set_channels(ch_t[0])
                expected = loss.expected_channels
            else:
                expected = None
            if expected is not None and any(c != expected for c in ch_t):
                raise ValueError(
                    f'model.losses.{name}.channels is {expected}, but the '
                    f'teacher source {spec.teacher!r} has {ch_t} channels '
                    f'(per level); set channels={ch_t[0]}')
            if compares_distributions(self.distill_losses[name]):
                self._check_distributions(name, ch_s, ch_t)
                continue
            if spec.adapter is True or (spec.adapter == 'auto'
                                        and ch_s != ch_t):
                adapters[name] = ConvAdapter(ch_s, ch_t)
            elif ch_s != ch_t and not channel_free(self.distill_losses[name]):
                raise ValueError(
                    f'model.losses.{name}.adapter is False but the student '
                    f'source {spec.student!r} has {ch_s} channels and the '
                    f'teacher source {spec.teacher!r} has {ch_t}; set adapter '
                    "to 'auto' or True, or tap modules with equal channels "
                    '(only losses marked channel_free, like PairWiseKDLoss, '
                    'compare maps of different widths)')
        return adapters

    def _check_layouts(self, name: str, f_s: Tensor, f_t: Tensor) -> None:
        spec = self.loss_specs[name]
        if f_s.dim() == 4 and f_t.dim() == 4:
            return  # maps of other sizes are resized
        if 3 in (f_s.dim(), f_t.dim()):  # token sequences, channels last
            bad = f_s.dim() != f_t.dim() or f_s.shape[:2] != f_t.shape[:2]
        else:
            bad = f_s.shape[2:] != f_t.shape[2:]
        if bad:
            raise ValueError(
                f'model.losses.{name}: student tap {spec.student!r} gives '
                f'{tuple(f_s.shape)} and teacher tap {spec.teacher!r} gives '
                f'{tuple(f_t.shape)}; tensors other than (N, C, H, W) maps '
                '(which are resized) must agree in all but their channels; '
                '(B, L, C) token sequences have their channels last')

    def _check_distributions(self, name: str, ch_s: list, ch_t: list):
        spec, key = self.loss_specs[name], f'model.losses.{name}'
        loss = type(_inner(self.distill_losses[name])).__name__
        if ch_s != ch_t:
            raise ValueError(
                f'{key}: {loss} compares class distributions, but the '
                f'student source {spec.student!r} has {ch_s} classes (logits '
                f'per level) and the teacher source {spec.teacher!r} has '
                f'{ch_t}; an adapter would invent a mapping between the class '
                'sets. Distil between models with the same classes (e.g. '
                'num_classes), or use a feature loss')
        if spec.adapter is True:
            raise ValueError(
                f'{key}.adapter is True, but {loss} compares class '
                'distributions, which an adapter must not remap; set '
                "adapter to 'auto' or False")

    def _apply(self, fn, *args, **kwargs):
        # Device and dtype moves reach the teacher, which is no submodule.
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def _teacher_records(self, inputs: Tensor, data_samples: list) -> dict:
        """The teacher's tapped outputs, in the student's dtype and the
        default layout; the forward runs under ``no_grad`` in
        ``teacher.precision``, with the savings of
        :mod:`mmkd.utils.fast_teacher` that ``model.teacher`` switches on
        (by default on CUDA in reduced precision: BatchNorms folded,
        NHWC)."""
        device = inputs.device
        cuda = device.type == 'cuda'
        dtype = autocast_dtype(self.teacher_precision, device)
        speed = self.teacher_speed
        reduced = cuda and dtype is not None
        layout = resolve_switch(speed['channels_last'], reduced)
        fold = (self._fold_pairs(inputs, data_samples)
                if resolve_switch(speed['fold_bn'], reduced) else [])

        def run(inputs: Tensor, data_samples: list) -> dict:
            return self._run_teacher(inputs, data_samples,
                                     self.teacher_precision, fold, layout)

        if cuda and speed['cuda_graph']:
            graphs = self.__dict__.get('_teacher_graphs')
            if graphs is None:
                graphs = TeacherGraphs(run, self._teacher_weights)
                self.__dict__['_teacher_graphs'] = graphs
            graphs.run = run  # the pairs or layout may have changed
            records = graphs(inputs, data_samples)  # copies
        else:
            records = run(inputs, data_samples)
        if dtype is None and not layout:
            return records
        return cast_floats(records, self._student_dtype() if dtype else None)

    def _run_teacher(self, inputs: Tensor, data_samples: list,
                     precision: str, fold: list, layout: bool) -> dict:
        """One forward of the teacher as far as the taps need; its
        records as they come (dtype, layout)."""
        with teacher_forward(precision, inputs.device, self.teacher, fold,
                             layout):
            if self._to_teacher_inputs is not None:
                inputs = self._to_teacher_inputs(inputs)
            if layout:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with self.teacher_taps.recording(stop_early=True):
                try:
                    self.teacher._forward(inputs, data_samples)
                except TapsComplete:
                    pass
                return self.teacher_taps.collect()

    def _fold_pairs(self, inputs: Tensor, data_samples: list) -> list:
        """The teacher's (conv, BatchNorm) pairs to fold, found on the
        first batch by tracing its forward in full precision, and kept only
        if the folded forward gives the same records there."""
        pairs = self.__dict__.get('_teacher_fold_pairs')
        if pairs is not None:
            return pairs
        found = []

        def plain() -> None:
            found.append(
                self._run_teacher(inputs, data_samples, 'fp32', [], False))

        pairs = find_fold_pairs(self.teacher, plain)
        if pairs:
            folded = self._run_teacher(inputs, data_samples, 'fp32', pairs,
                                       False)
            error = fold_error(found[0], folded)
            if error > FOLD_TOLERANCE:
                warnings.warn(
                    f'model.teacher.fold_bn: folding {len(pairs)} '
                    f'BatchNorms into their convolutions changed the '
                    f"teacher's records by {error:.2g} (relative); the "
                    'teacher runs unfolded (a convolution whose output is '
                    'read by more than its BatchNorm?)')
                pairs = []
        self.__dict__['_teacher_fold_pairs'] = pairs
        return pairs

    def _teacher_weights(self) -> tuple:
        """A token of the teacher's weights: their storage and versions."""
        return tuple((t.data_ptr(), t._version)
                     for t in self.__dict__.setdefault(
                         '_teacher_tensors',
                         list(self.teacher.parameters()) +
                         list(self.teacher.buffers())))

    def _student_dtype(self) -> torch.dtype:
        return next(bare(self.student).parameters()).dtype

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """The student's own losses plus ``distill.<name>`` for each loss."""
        active = [n for n, w in self.loss_multipliers.items() if w > 0]
        losses, records_s, records_t, paired = self.collect(
            inputs, data_samples, with_teacher=bool(active))
        step = Step(inputs, data_samples, self.student, (records_s, records_t),
                    paired, self.constants)
        feats_s = {
            name: levels_of(resolve(spec.student, step, 0))
            for name, spec in self.loss_specs.items()
            if name in active or spec.student in records_s
        }
        adapted = self.adapters(feats_s)  # one call: one DDP forward
        for name in self.loss_specs:
            losses[f'distill.{name}'] = (
                self._distill_loss(name, adapted[name], step)
                if name in active else self._skipped_loss(
                    name, adapted.get(name), inputs))
        return losses

    def collect(self, inputs: Tensor, data_samples: list,
                with_teacher: bool = True) -> tuple:
        """Run the teacher as far as needed and the student's ``loss()``.

        Returns:
            tuple: The student's losses, the student's and the teacher's tap
            records (by module name) and the pairings' records (by
            ``'<pairing>.<key>'``; none without the teacher).
        """
        records_t = (self._teacher_records(inputs, data_samples)
                     if with_teacher else {})
        for pairing in self.pairings.values():
            pairing.reset()
            pairing.active = True
        try:
            with self.student_taps.recording():
                # through a (DDP) wrapper's forward, so gradients are synced
                losses = self.student(inputs, data_samples, mode='loss')
                records_s = self.student_taps.collect()
        finally:
            for pairing in self.pairings.values():
                pairing.active = False
        paired = {}
        if with_teacher:
            for head, pairing in self.pairings.items():
                for key, value in pairing.records(records_t, inputs,
                                                  data_samples).items():
                    paired[f'{head}.{key}'] = value
            if autocast_dtype(self.teacher_precision,
                              inputs.device) is not None:
                # the teacher's heads ran in reduced precision
                paired = cast_floats(paired, self._student_dtype())
        return losses, records_s, records_t, paired

    def _distill_loss(self, name: str, feats_s: List[Tensor],
                      step: Step) -> Tensor:
        """One loss on the (adapted) student levels and its other inputs."""
        spec = self.loss_specs[name]
        feats_t = levels_of(resolve(spec.teacher, step, 1))
        feats_s = resize_like(feats_s, feats_t)
        kwargs = {}
        for arg, source in spec.inputs.items():
            try:
                kwargs[arg] = resolve(source, step)
            except KeyError as err:
                raise KeyError(f'model.losses.{name}.inputs.{arg}: '
                               f'{err.args[0]}') from err
        one = len(feats_s) == 1
        value = self.distill_losses[name](feats_s[0] if one else feats_s,
                                          feats_t[0] if one else feats_t,
                                          **kwargs)
        multiplier = self.loss_multipliers[name]
        return value if multiplier == 1.0 else value * multiplier

    def _skipped_loss(self, name: str, feats_s: Optional[List[Tensor]],
                      inputs: Tensor) -> Tensor:
        # Zero that still touches the adapter, so DDP finds its gradients.
        zero = inputs.new_zeros(())
        if name not in self.adapters:
            return zero
        if feats_s is not None:  # the adapter ran
            return sum((f.sum() * 0 for f in feats_s), zero)
        return sum((p.sum() * 0 for p in self.adapters[name].parameters()),
                   zero)

    def parse_losses(self, losses: Dict[str, Tensor]):
        """mmengine's parsing, with every ``distill.*`` term back-propagated.

        mmengine sums only keys that contain 'loss'; the distillation terms
        are named after their config entries, so they are added explicitly.
        """
        loss, log_vars = super().parse_losses(losses)
        extra = [
            v for k, v in log_vars.items()
            if k.startswith('distill.') and 'loss' not in k
        ]
        if extra:
            loss = loss + sum(extra)
            log_vars['loss'] = loss
        return loss, log_vars

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """The student's predictions."""
        return bare(self.student).predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """The student's raw outputs."""
        return bare(self.student)._forward(inputs, data_samples)
