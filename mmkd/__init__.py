"""mmkd: knowledge distillation for OpenMMLab detection and segmentation.

Importing the package registers every distiller, loss, adapter and hook, so
``custom_imports = dict(imports=['mmkd'])`` is all a config needs.
"""
from . import engine, models, utils  # noqa: F401  (registers modules)
from .version import __version__

__all__ = ['__version__']
