# MobileBERT's feature-map and attention transfer
# (configs/_base_/methods/mobilebert.py) on the SegFormer pair: the 8 layer
# pairs of MiT-B2's depth against MiT-B0's, a linear adapter from the
# student's width to the teacher's.
#
# The feature-map terms at 1e-4 of the official factors: those are for
# MobileBERT's layer-wise transfer, a phase without a task loss. Trained
# jointly with the task, each feature-map pair sends 31-320 into the
# student's backbone against 0.05 from the cross-entropy, and the student
# loses 18 mIoU (seed 0: 28.69 against 46.99); at 1e-4 the two are of a
# size and it gains (docs/method_notes.md, "MobileBERT on a transformer
# pair"). The attention terms keep the official factor.
_base_ = [
    './_base_/segformer_mitb2_to_mitb0_digits.py',
    '../_base_/methods/mobilebert.py'
]
model = dict(**_base_.pop('mobilebert_mit'))
model['losses'].update({
    name: dict(loss, loss_weight=loss['loss_weight'] * 1e-4)
    for name, loss in model['losses'].items() if name.startswith('fmt')
})
_base_.pop('mobilebert_swin')  # the Swin recipe, for detectors
