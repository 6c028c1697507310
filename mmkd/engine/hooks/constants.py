"""Hooks that provide a distiller's constants (``'const.<name>'``)."""
from typing import Dict, Iterable, Tuple

from mmengine.hooks import Hook
from torch import Tensor


class ConstantHook(Hook):
    """Base of the hooks that compute values losses read as
    ``'const.<name>'`` (e.g. :class:`TeacherCentroidHook`).

    Tools ask a hook of this kind what it provides instead of knowing it by
    name: :meth:`constant_names` lists the constants it sets,
    :meth:`quick_settings` the settings of a short smoke run, and
    :meth:`compute` computes the constants on given batches (e.g.
    ``tools/benchmark.py`` on synthetic ones).
    """

    def constant_names(self) -> Tuple[str, ...]:
        """The names of the constants this hook sets."""
        raise NotImplementedError

    def quick_settings(self) -> dict:
        """Settings (constructor arguments) for a smoke run. Defaults to
        none."""
        return {}

    def compute(self, distiller, batches: Iterable[dict]) -> Dict[str, Tensor]:
        """The constants over ``batches`` (as a dataloader yields them)."""
        raise NotImplementedError
