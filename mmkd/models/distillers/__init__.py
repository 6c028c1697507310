from .adversarial import StructuredDistiller
from .pairing import BasePairing
from .single_teacher import SingleTeacherDistiller

__all__ = ['BasePairing', 'SingleTeacherDistiller', 'StructuredDistiller']
