"""Pairings: student and teacher outputs on the *same* samples.

Taps record whatever a module outputs. Some losses need more: the teacher's
RoI head evaluated on the student's sampled proposals, or the teacher's
dense head read at the student's positive locations, together with the
student's labels and targets. A pairing builds such records. It watches the
student's own ``loss()`` through forward hooks (no patching of library
code), is handed the teacher's tapped outputs, and returns named records:
a ``(student, teacher)`` tuple for paired values, a plain value otherwise.
"""
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from mmkd.utils.precision import teacher_forward
from .mmdet_calls import HookSet


class BasePairing(nn.Module):
    """Base class of pairings; subclasses name what they read and give.

    Subclasses set :attr:`teacher_taps` (teacher modules whose outputs they
    need), :attr:`paired` and :attr:`plain` (the record keys they return),
    check the models and register their student hooks in :meth:`setup`
    (through :attr:`hooks`, so that :meth:`remove_hooks` removes them;
    what they read from mmdet's calls goes through
    :mod:`~mmkd.models.pairings.mmdet_calls`), and
    compute the records in :meth:`records`. Student hooks must do nothing
    unless :attr:`active` is set: the distiller sets it only around the
    student's ``loss()``.

    Example:
        >>> class Inputs(BasePairing):
        ...     paired = ('image', )
        ...     def records(self, teacher_records, inputs, data_samples):
        ...         return dict(image=(inputs, inputs))
        >>> Inputs().keys()
        ('image',)
    """

    teacher_taps: Tuple[str, ...] = ()
    paired: Tuple[str, ...] = ()
    plain: Tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.active = False
        #: the hooks :meth:`setup` registers on the models
        self.hooks = HookSet()

    def remove_hooks(self) -> None:
        """Remove the hooks :meth:`setup` registered on the models."""
        self.hooks.remove()

    def keys(self) -> Tuple[str, ...]:
        """Every record key this pairing returns."""
        return tuple(self.paired) + tuple(self.plain)

    def setup(self, student: nn.Module, teacher: nn.Module, key: str) -> None:
        """Check the models fit and register student hooks.

        Args:
            student (nn.Module): The student model.
            teacher (nn.Module): The teacher model.
            key (str): The config key of this pairing, for errors.
        """

    #: the teacher's forward precision; the distiller sets its own
    #: ``teacher.precision`` here
    precision = 'auto'

    def teacher_forward(self, device: torch.device, module: nn.Module):
        """Context for the teacher's ``module`` (a head) run here:
        ``no_grad`` in the teacher's precision (the distiller casts the
        records back)."""
        return teacher_forward(self.precision, device, module)

    def reset(self) -> None:
        """Forget what the last student step recorded."""

    def channels(self, student: nn.Module,
                 teacher: nn.Module) -> Dict[str, Tuple[List[int], List[int]]]:
        """``{paired key: (student channels, teacher channels)}`` for keys
        that may need an adapter. Defaults to none."""
        return {}

    def records(self, teacher_records: Dict[str, Any], inputs: Any,
                data_samples: Sequence) -> Dict[str, Any]:
        """Compute the records after the student's ``loss()``.

        Args:
            teacher_records (dict): The teacher's tapped outputs, by module
                name (at least :attr:`teacher_taps`).
            inputs (Tensor): The batch, as the student saw it.
            data_samples (Sequence): The batch's data samples.
        """
        raise NotImplementedError
