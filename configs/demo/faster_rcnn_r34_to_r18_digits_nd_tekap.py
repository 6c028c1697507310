# KD++ with TeKAP (configs/_base_/methods/tekap.py) on the digits pair.
_base_ = [
    './faster_rcnn_r34_to_r18_digits_nd.py', '../_base_/methods/tekap.py'
]
model = _base_.pop('kdpp_tekap')  # merged into the KD++ config's distiller
