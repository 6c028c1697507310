# PKD on the FPN (configs/_base_/methods/pkd.py) on the Faster R-CNN pair.
_base_ = [
    './_base_/faster_rcnn_r34_to_r18_digits.py', '../_base_/methods/pkd.py'
]
model = _base_.pop('pkd')
