from .base import BasePairing
from .crosskd import CrossKDPairing
from .crosskd_dense import (CrossKDATSSPairing, CrossKDFCOSPairing,
                            CrossKDRetinaPairing)
from .gfl import GFLPairing
from .roi import RoIPairing
from .rpn import RPNPairing

__all__ = [
    'BasePairing', 'RoIPairing', 'RPNPairing', 'GFLPairing', 'CrossKDPairing',
    'CrossKDRetinaPairing', 'CrossKDATSSPairing', 'CrossKDFCOSPairing'
]
