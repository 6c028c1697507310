"""Pictures for inspecting distillation (needs matplotlib).

Not imported by ``import mmkd``, so matplotlib stays optional.
"""
from .feature_pictures import (channel_norms, default_loss,
                               draw_feature_pictures, norm_statistics,
                               record_features)

__all__ = [
    'channel_norms', 'default_loss', 'draw_feature_pictures',
    'norm_statistics', 'record_features'
]
