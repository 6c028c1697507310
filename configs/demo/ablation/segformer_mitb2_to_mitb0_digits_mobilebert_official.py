# Ablation (docs/method_notes.md, "MobileBERT on a transformer pair"): the
# digits SegFormer pair with MobileBERT's official factors, every term from
# the start. Train the teacher first (configs/demo/segformer_mitb2_digits.py).
_base_ = ['../segformer_mitb2_to_mitb0_digits_mobilebert.py']
model = dict(losses={
    name: dict(loss_weight=1 / 8)
    for name in _base_.model.losses if name.startswith('fmt')
})
