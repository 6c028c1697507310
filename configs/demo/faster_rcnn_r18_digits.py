# The student: ResNet-18 at width 16 (see _base_/faster_rcnn_digits.py).
_base_ = './_base_/faster_rcnn_digits.py'
