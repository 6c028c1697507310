"""Datasets mmkd makes itself (not imported by ``import mmkd``: the digits
set needs scikit-learn)."""
from .digits import CLASSES, compose_image, digit_crops, make_digits

__all__ = ['CLASSES', 'compose_image', 'digit_crops', 'make_digits']
