"""One distiller for mmdet detectors and mmseg segmentors."""
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from mmkd.registry import MODELS
from ..adapters import ConvAdapter
from ..adapters.conv_adapter import resize_like
from .builder import build_model, build_teacher, input_converter
from .taps import TapRecorder, TapsComplete, levels_of, resolve_modules

ADAPTER_MODES = ('auto', True, False)


class LossSpec(NamedTuple):
    """Where one distillation loss takes its inputs from."""
    student: str
    teacher: str
    adapter: Union[str, bool]


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
class SingleTeacherDistiller(BaseModel):
    """Train an mmdet detector or mmseg segmentor with one frozen teacher.

    The teacher is built from its own config and checkpoint, frozen, kept in
    eval mode and out of the module tree: it is in no optimizer, no DDP
    gradient sync and no training checkpoint. In :meth:`loss` it runs under
    ``torch.no_grad()`` and stops as soon as every teacher tap has been
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
            and whether every checkpoint key must fit.
        losses (dict): ``{name: loss_cfg}``. Each ``loss_cfg`` is a loss
            config plus ``student`` and ``teacher`` (dotted module names to
            tap, e.g. ``'neck'``) and optionally ``adapter`` ('auto', True or
            False; defaults to 'auto').
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

    def __init__(self,
                 student: Union[dict, str],
                 teacher: dict,
                 losses: Dict[str, dict],
                 probe_size: int = 128,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if data_preprocessor is not None and isinstance(student, dict):
            student = dict(student)
            student.setdefault('data_preprocessor', data_preprocessor)
        self.student = build_model(student, 'model.student')
        self.data_preprocessor = self.student.data_preprocessor
        teacher_model = build_teacher(teacher, 'model.teacher')
        # A tuple keeps the teacher out of parameters(), state_dict() and DDP.
        self._teacher = (teacher_model, )
        self._to_teacher_inputs = input_converter(self.student, teacher_model)
        self.loss_specs, self.distill_losses = self._build_losses(losses)
        self.student_taps = TapRecorder(
            self.student, [s.student for s in self.loss_specs.values()],
            'model.losses')
        self.teacher_taps = TapRecorder(
            teacher_model, [s.teacher for s in self.loss_specs.values()],
            'model.losses')
        self.adapters = self._build_adapters(probe_size)
        # Per-loss factors set by DistillLossWeightHook; 0 skips the loss.
        self.loss_multipliers = {name: 1.0 for name in self.loss_specs}

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a submodule: see the class docstring)."""
        return self._teacher[0]

    def _build_losses(
            self,
            losses: Dict[str,
                         dict]) -> Tuple[Dict[str, LossSpec], nn.ModuleDict]:
        if not isinstance(losses, (dict, ConfigDict)) or not losses:
            raise ValueError('model.losses must be a non-empty dict of '
                             f'{{name: loss config}}, got {losses!r}')
        specs, modules = {}, nn.ModuleDict()
        for name, cfg in losses.items():
            key = f'model.losses.{name}'
            if not name.isidentifier():
                raise ValueError(f'{key}: loss names must be identifiers')
            cfg = dict(cfg)
            for side in ('student', 'teacher'):
                if not isinstance(cfg.get(side), str):
                    raise KeyError(
                        f'{key}.{side} must name the {side} module to tap, '
                        f"e.g. 'neck' or 'backbone.layer3'; got "
                        f'{cfg.get(side)!r}')
            adapter = cfg.pop('adapter', 'auto')
            if adapter not in ADAPTER_MODES:
                raise ValueError(f'{key}.adapter is {adapter!r}; valid values '
                                 f'are {ADAPTER_MODES}')
            spec = LossSpec(cfg.pop('student'), cfg.pop('teacher'), adapter)
            resolve_modules(self.student, [spec.student], f'{key}.student')
            resolve_modules(self.teacher, [spec.teacher], f'{key}.teacher')
            specs[name], modules[name] = spec, self._build_loss(cfg, key)
        return specs, modules

    @staticmethod
    def _build_loss(cfg: dict, key: str) -> nn.Module:
        with DefaultScope.overwrite_default_scope('mmkd'):
            try:
                return MODELS.build(cfg)
            except KeyError as err:
                if 'is not in the' not in str(err):
                    raise
                known = sorted(
                    n for n in MODELS.module_dict if n.endswith('Loss'))
                raise KeyError(
                    f"{key}.type: {cfg.get('type')!r} is not a registered "
                    f'loss; mmkd has {known}, and mmdet/mmseg losses work '
                    "with their scope ('mmdet.KDQualityFocalLoss')") from err

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

    def _build_adapters(self, probe_size: int) -> nn.ModuleDict:
        shapes_s = self._probe(self.student, self.student_taps, probe_size)
        shapes_t = self._probe(self.teacher, self.teacher_taps, probe_size)
        adapters = nn.ModuleDict()
        for name, spec in self.loss_specs.items():
            levels_s, levels_t = shapes_s[spec.student], shapes_t[spec.teacher]
            if len(levels_s) != len(levels_t):
                raise ValueError(
                    f'model.losses.{name}: student tap {spec.student!r} gives '
                    f'{len(levels_s)} levels, teacher tap {spec.teacher!r} '
                    f'gives {len(levels_t)}; tap outputs with as many levels')
            ch_s = [f.shape[1] for f in levels_s]
            ch_t = [f.shape[1] for f in levels_t]
            if spec.adapter is True or (spec.adapter == 'auto'
                                        and ch_s != ch_t):
                adapters[name] = ConvAdapter(ch_s, ch_t)
            elif ch_s != ch_t:
                raise ValueError(
                    f'model.losses.{name}.adapter is False but the student '
                    f'tap {spec.student!r} has {ch_s} channels and the '
                    f'teacher tap {spec.teacher!r} has {ch_t}; set adapter to '
                    "'auto' or True, or tap modules with equal channels")
        return adapters

    def _apply(self, fn, *args, **kwargs):
        # Device and dtype moves reach the teacher, which is no submodule.
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    @torch.no_grad()
    def _teacher_records(self, inputs: Tensor, data_samples: list) -> dict:
        if self._to_teacher_inputs is not None:
            inputs = self._to_teacher_inputs(inputs)
        with self.teacher_taps.recording(stop_early=True):
            try:
                self.teacher._forward(inputs, data_samples)
            except TapsComplete:
                pass
            return self.teacher_taps.collect()

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """mmengine's entry point: 'loss', 'predict' or 'tensor'."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f"invalid mode {mode!r}; valid modes are 'loss', "
                           "'predict' and 'tensor'")

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """The student's own losses plus ``distill.<name>`` for each loss."""
        active = [n for n, w in self.loss_multipliers.items() if w > 0]
        records_t = (
            self._teacher_records(inputs, data_samples) if active else {})
        with self.student_taps.recording():
            losses = self.student.loss(inputs, data_samples)
            records_s = self.student_taps.collect()
        for name, spec in self.loss_specs.items():
            if name not in active:
                # Zero that still touches the adapter, so DDP finds its grads.
                losses[f'distill.{name}'] = sum(
                    (p.sum() * 0 for p in self.adapters[name].parameters()),
                    inputs.new_zeros(())) if name in self.adapters else \
                    inputs.new_zeros(())
                continue
            feats_s = levels_of(records_s[spec.student])
            feats_t = levels_of(records_t[spec.teacher])
            if name in self.adapters:
                feats_s = self.adapters[name](feats_s)
            feats_s = resize_like(feats_s, feats_t)
            one = len(feats_s) == 1
            value = self.distill_losses[name](feats_s[0] if one else feats_s,
                                              feats_t[0] if one else feats_t)
            multiplier = self.loss_multipliers[name]
            losses[f'distill.{name}'] = (
                value if multiplier == 1.0 else value * multiplier)
        return losses

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
        return self.student.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """The student's raw outputs."""
        return self.student._forward(inputs, data_samples)
