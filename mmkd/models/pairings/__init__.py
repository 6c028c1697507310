from .gfl import GFLPairing
from .roi import RoIPairing

__all__ = ['RoIPairing', 'GFLPairing']
