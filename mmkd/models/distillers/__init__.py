from .adversarial import StructuredDistiller
from .single_teacher import SingleTeacherDistiller

__all__ = ['SingleTeacherDistiller', 'StructuredDistiller']
