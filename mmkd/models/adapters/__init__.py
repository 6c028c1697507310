from .conv_adapter import AdapterDict, ConvAdapter, channel_dim, resize_like

__all__ = ['AdapterDict', 'ConvAdapter', 'channel_dim', 'resize_like']
