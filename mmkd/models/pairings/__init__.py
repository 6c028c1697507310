from .gfl import GFLPairing
from .roi import RoIPairing
from .rpn import RPNPairing

__all__ = ['RoIPairing', 'RPNPairing', 'GFLPairing']
