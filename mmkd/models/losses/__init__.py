from .bounded_regression import BoundedRegressionLoss
from .cwd import ChannelWiseDivergence
from .dist import DISTLoss
from .fgd import FGDLoss
from .hint import FeatureHintLoss
from .holistic import HolisticCritic, HolisticKDLoss, critic_loss
from .kd_qfl import KDQualityFocalLoss
from .kl_div import KLDivLoss
from .ld import LDLoss
from .mgd import MGDLoss
from .mobilebert import AttentionTransferLoss, FeatureMapTransferLoss
from .nd import NDLoss
from .pair_wise import PairWiseKDLoss
from .pixel_wise import PixelWiseKDLoss
from .pkd import PKDLoss
from .sigmoid_soft_ce import SigmoidSoftCELoss
from .soft_ce import WeightedSoftCELoss
from .tekap import TeKAP

__all__ = ['FeatureHintLoss']
__all__ += ['WeightedSoftCELoss', 'BoundedRegressionLoss', 'NDLoss', 'TeKAP']
__all__ += [
    'PixelWiseKDLoss', 'PairWiseKDLoss', 'HolisticCritic', 'HolisticKDLoss',
    'critic_loss'
]
__all__ += ['LDLoss']
__all__ += ['SigmoidSoftCELoss', 'KLDivLoss']
__all__ += ['ChannelWiseDivergence', 'PKDLoss', 'DISTLoss', 'MGDLoss',
            'FGDLoss', 'KDQualityFocalLoss']
__all__ += ['FeatureMapTransferLoss', 'AttentionTransferLoss']
