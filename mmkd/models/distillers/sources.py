"""Where a loss input comes from: one lookup for every source.

A distillation loss names each of its inputs by a source string:

- a module of the student or the teacher, tapped (``'neck'``,
  ``'backbone.layer3'``, ``'decode_head.conv_seg'``);
- a record of a pairing, ``'<pairing>.<key>'`` (``'roi.cls'``): a
  ``(student, teacher)`` pair for the loss's first two arguments, a plain
  value for the others;
- a field of the training batch, ``'batch.<field>'`` (:data:`BATCH_FIELDS`:
  the images, ground-truth boxes and labels, label maps, the valid-pixel
  mask);
- a constant set before or during training, ``'const.<name>'`` (ND's
  class centroids, set by :class:`~mmkd.engine.TeacherCentroidHook`).

:func:`check_source` validates a source at build time, naming the config
key; :func:`resolve` looks it up during a step.
"""
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from .taps import resolve_modules

BATCH = 'batch.'
CONSTANT = 'const.'

#: ``{field: fn(inputs, data_samples, student)}`` of ``'batch.<field>'``.
BATCH_FIELDS: Dict[str, Callable] = {}


def batch_field(name: str) -> Callable:
    """Register ``fn(inputs, data_samples, student)`` as ``'batch.name'``.

    Example:
        >>> @batch_field('num_images')
        ... def num_images(inputs, data_samples, student):
        ...     return len(data_samples)
        >>> 'num_images' in BATCH_FIELDS
        True
    """

    def register(fn: Callable) -> Callable:
        BATCH_FIELDS[name] = fn
        return fn

    return register


def _samples_with(data_samples: Sequence, field: str) -> Sequence:
    if not data_samples or not all(field in ds for ds in data_samples):
        raise KeyError(
            f"'{BATCH}{field}': the batch's data samples have no {field} "
            '(a training batch of mmdet has gt_instances, of mmseg '
            'gt_sem_seg)')
    return data_samples


@batch_field('inputs')
def _inputs(inputs: Tensor, data_samples: Sequence, student) -> Tensor:
    """The batch's images, as the student sees them (preprocessed)."""
    return inputs


@batch_field('data_samples')
def _data_samples(inputs, data_samples: Sequence, student) -> Sequence:
    """The batch's data samples."""
    return data_samples


@batch_field('gt_instances')
def _gt_instances(inputs, data_samples: Sequence, student) -> list:
    """Each image's ground-truth ``InstanceData`` (mmdet)."""
    return [ds.gt_instances
            for ds in _samples_with(data_samples, 'gt_instances')]


@batch_field('gt_bboxes')
def _gt_bboxes(inputs, data_samples: Sequence, student) -> list:
    """Each image's ground-truth boxes, ``(n_i, 4)`` xyxy in pixels."""
    return [g.bboxes for g in _gt_instances(inputs, data_samples, student)]


@batch_field('gt_labels')
def _gt_labels(inputs, data_samples: Sequence, student) -> list:
    """Each image's ground-truth labels, ``(n_i, )``."""
    return [g.labels for g in _gt_instances(inputs, data_samples, student)]


@batch_field('gt_sem_seg')
def _gt_sem_seg(inputs, data_samples: Sequence, student) -> Tensor:
    """The padded batch's label maps, ``(N, 1, H, W)`` (mmseg)."""
    samples = _samples_with(data_samples, 'gt_sem_seg')
    return torch.stack([ds.gt_sem_seg.data for ds in samples])


@batch_field('valid_mask')
def _valid_mask(inputs, data_samples: Sequence, student) -> Tensor:
    """``(N, 1, H, W)`` bool: pixels whose label is not the student decode
    head's ``ignore_index`` (mmseg pads the batch with it too)."""
    gt = _gt_sem_seg(inputs, data_samples, student)
    return gt != ignore_index(student)


def ignore_index(model: nn.Module) -> int:
    """The label a segmentor ignores (its decode head's; mmseg's 255)."""
    model = model.module if is_model_wrapper(model) else model
    return getattr(getattr(model, 'decode_head', None), 'ignore_index', 255)


class Step:
    """What one training step recorded, for :func:`resolve`.

    Args:
        inputs (Tensor): The batch's images.
        data_samples (Sequence): The batch's data samples.
        student (nn.Module): The student (for batch fields that read it).
        taps (tuple): The student's and the teacher's tap records.
        paired (dict): The pairings' records, by ``'<pairing>.<key>'``.
        constants (dict): The distiller's constants, by name.
    """

    def __init__(self, inputs: Tensor, data_samples: Sequence,
                 student: nn.Module, taps: tuple, paired: Dict[str, Any],
                 constants: Dict[str, Any]) -> None:
        self.inputs, self.data_samples = inputs, data_samples
        self.student, self.taps = student, taps
        self.paired, self.constants = paired, constants
        self._fields: Dict[str, Any] = {}


def resolve(source: str, step: Step, side: Optional[int] = None) -> Any:
    """The value of ``source`` in ``step``.

    Args:
        source (str): A checked source (see the module docstring).
        step (Step): What the step recorded.
        side (int, optional): 0 for the student's side of a paired record or
            tap, 1 for the teacher's; None for a plain input.
    """
    if source.startswith(BATCH):
        field = source[len(BATCH):]
        if field not in step._fields:
            step._fields[field] = BATCH_FIELDS[field](
                step.inputs, step.data_samples, step.student)
        return step._fields[field]
    if source.startswith(CONSTANT):
        name = source[len(CONSTANT):]
        if name not in step.constants:
            raise KeyError(
                f'{source!r} is not set; constants are set by hooks before '
                f'training (set now: {sorted(step.constants)}): add the hook '
                'that computes it to custom_hooks (for ND centroids: '
                "dict(type='mmkd.TeacherCentroidHook'))")
        return step.constants[name]
    if source in step.paired:
        value = step.paired[source]
        return value if side is None else value[side]
    return step.taps[side][source]


def check_source(source: Any, key: str, pairings: Dict[str, tuple],
                 model: Optional[nn.Module] = None) -> None:
    """Refuse a source that cannot be resolved, naming the config key.

    Args:
        source: The configured source.
        key (str): Its config key, e.g. ``'model.losses.nd.inputs.labels'``.
        pairings (dict): ``{pairing name: (paired keys, plain keys)}``.
        model (nn.Module, optional): The model whose modules the source may
            tap: set for a loss's ``student``/``teacher`` source (which may
            also be a paired record), None for a further input (a plain
            record, a batch field or a constant).
    """
    if not isinstance(source, str):
        raise KeyError(f'{key} must be a source string, got {source!r}')
    head = source.split('.')[0]
    paired = model is not None
    if head in pairings:
        keys = pairings[head][0 if paired else 1]
        record = source[len(head) + 1:]
        if record not in keys:
            kind = 'paired' if paired else 'plain'
            raise KeyError(f'{key}: pairing {head!r} has no {kind} record '
                           f'{record!r}; its {kind} records are {keys}')
    elif paired:
        resolve_modules(model, [source], key)
    elif source.startswith(BATCH):
        if source[len(BATCH):] not in BATCH_FIELDS:
            raise KeyError(
                f'{key}: {source!r} is not a batch field; the batch fields '
                f'are {sorted(BATCH + f for f in BATCH_FIELDS)}')
    elif not source.startswith(CONSTANT) or source == CONSTANT:
        raise KeyError(
            f'{key}: {source!r} is neither a pairing record '
            f"('<pairing>.<key>', pairings: {sorted(pairings)}), a batch "
            f"field ('batch.<field>') nor a constant ('const.<name>')")
