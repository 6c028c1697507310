# KD++ with TeKAP (configs/_base_/methods/tekap.py) on the digits pair.
_base_ = [
    './faster_rcnn_r34_to_r18_digits_nd.py', '../_base_/methods/tekap.py'
]
model = dict(losses={{_base_.kdpp_tekap.losses}})
