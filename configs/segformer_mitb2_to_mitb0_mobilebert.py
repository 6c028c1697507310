# MobileBERT's feature-map and attention transfer (see
# _base_/methods/mobilebert.py): SegFormer MiT-B2 teacher (mmseg model zoo,
# 45.58 mIoU) -> MiT-B0 student (37.41 mIoU trained alone), ADE20K 512x512,
# mmseg's 160k schedule. MobileBERT itself is a language model; no published
# segmentation figure exists for this recipe, and its weights are the
# official layer-wise ones, not tuned for joint training with the task.
_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    './_base_/distill_runtime.py', './_base_/methods/mobilebert.py'
]
model = dict(
    _delete_=True,
    type='mmkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(
        config='mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py',
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/'
        'segformer/segformer_mit-b2_512x512_160k_ade20k/segformer_mit-b2_'
        '512x512_160k_ade20k_20210726_112103-cbd414ac.pth'),
    **_base_.pop('mobilebert_mit'))
_base_.pop('mobilebert_swin')  # the Swin recipe, for detectors
