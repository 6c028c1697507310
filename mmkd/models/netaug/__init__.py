from .netaug import NetAug
from .widths import make_divisible, widened

__all__ = ['NetAug', 'make_divisible', 'widened']
