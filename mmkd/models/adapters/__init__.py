from .conv_adapter import AdapterDict, ConvAdapter, resize_like

__all__ = ['AdapterDict', 'ConvAdapter', 'resize_like']
