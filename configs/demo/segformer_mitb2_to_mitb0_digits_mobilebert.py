# MobileBERT's feature-map and attention transfer
# (configs/_base_/methods/mobilebert.py) on the SegFormer pair: the 8 layer
# pairs of MiT-B2's depth against MiT-B0's, a linear adapter from the
# student's width to the teacher's.
_base_ = [
    './_base_/segformer_mitb2_to_mitb0_digits.py',
    '../_base_/methods/mobilebert.py'
]
model = dict(**_base_.pop('mobilebert_mit'))
_base_.pop('mobilebert_swin')  # the Swin recipe, for detectors
