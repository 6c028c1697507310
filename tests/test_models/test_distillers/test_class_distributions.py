"""Losses that compare class distributions get no adapter, and refuse
student and teacher of different class counts when the model is built."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from tiny_setups import distill_config

CLS = 'roi_head.bbox_head.fc_cls'  # the RoI logits, tapped


def teacher_with_classes(config, num_classes, head):
    model = Config.fromfile(config).model
    parent = model
    for name in head.split('.')[:-1]:
        parent = parent[name]
    parent[head.split('.')[-1]] = num_classes
    return dict(config=model, checkpoint=None)


def build(cfg):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def roi_kl_config(det_files, teacher_classes, **loss):
    cfg = distill_config(det_files)
    cfg.model.teacher = teacher_with_classes(
        det_files['teacher'], teacher_classes,
        'roi_head.bbox_head.num_classes')
    cfg.model.losses = dict(
        kl=dict(type='mmkd.KLDivLoss', student=CLS, teacher=CLS, **loss))
    return cfg


def test_roi_logits_of_other_classes_fail_naming_the_key(det_files):
    # 3 + 1 student logits against 5 + 1 teacher logits
    with pytest.raises(
            ValueError,
            match=r"model.losses.kl: KLDivLoss compares class distributions"
            r".* has \[4\] classes .* has \[6\]"):
        build(roi_kl_config(det_files, 5))


def test_wrapped_loss_answers_for_the_loss_it_wraps(det_files):
    cfg = roi_kl_config(det_files, 5)
    kl = cfg.model.losses.kl
    cfg.model.losses.kl = dict(
        type='mmkd.TeKAP',
        student=kl.pop('student'),
        teacher=kl.pop('teacher'),
        loss=kl)
    with pytest.raises(ValueError, match='KLDivLoss compares class'):
        build(cfg)


def test_same_classes_get_no_adapter(det_files):
    model = build(roi_kl_config(det_files, 3))
    assert 'kl' not in model.adapters
    with pytest.raises(
            ValueError,
            match='model.losses.kl.adapter is True, but KLDivLoss compares'):
        build(roi_kl_config(det_files, 3, adapter=True))


def test_tapped_segmentation_logits(seg_files):
    """mmseg logits tapped on the classifier, with PixelWiseKDLoss."""
    cfg = distill_config(seg_files, tap='decode_head.conv_seg')
    cfg.model.teacher = teacher_with_classes(seg_files['teacher'], 5,
                                             'decode_head.num_classes')
    cfg.model.losses.hint.type = 'mmkd.PixelWiseKDLoss'
    with pytest.raises(
            ValueError,
            match='model.losses.hint: PixelWiseKDLoss compares class'):
        build(cfg)
