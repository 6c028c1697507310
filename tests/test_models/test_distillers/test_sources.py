"""One lookup for every loss input: taps, pairing records, batch fields and
constants, checked at build time and resolved per step."""
import copy

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch import nn

from mmkd.models.distillers.sources import (BATCH_FIELDS, Step, check_source,
                                            resolve)
from mmkd.registry import MODELS as MMKD_MODELS
from tiny_setups import distill_config, roi_config


@MMKD_MODELS.register_module(force=True)
class BoxHintLoss(nn.Module):
    """Test loss: the MSE of neck level 0 inside ground-truth boxes only,
    a loss that reads the batch's boxes as FGD's foreground mask does."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, feats_s, feats_t, gt_bboxes, images=None):
        feat_s, feat_t = feats_s[0], feats_t[0]
        mask = torch.zeros_like(feat_s[:, :1])
        stride = images.shape[-1] / feat_s.shape[-1]
        for i, boxes in enumerate(gt_bboxes):
            for x1, y1, x2, y2 in (boxes / stride).long().tolist():
                mask[i, :, y1:y2 + 1, x1:x2 + 1] = 1
        self.seen = dict(gt_bboxes=gt_bboxes, images=images, mask=mask,
                         feat_s=feat_s.detach(), feat_t=feat_t)
        return self.loss_weight * ((feat_s - feat_t)**2 * mask).sum() / (
            mask.sum() * feat_s.shape[1])


def build(cfg):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg.model))


def first_batch(cfg, model):
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    return model.data_preprocessor(next(iter(loader)), True)


def box_hint_config(det_files, **inputs):
    cfg = distill_config(det_files)
    cfg.model.losses = dict(
        box=dict(
            type='mmkd.BoxHintLoss',
            student='neck',
            teacher='neck',
            loss_weight=2.0,
            inputs=inputs or dict(
                gt_bboxes='batch.gt_bboxes', images='batch.inputs')))
    return cfg


def test_a_loss_reads_ground_truth_boxes_without_a_distiller_subclass(
        det_files):
    cfg = box_hint_config(det_files)
    model = build(cfg)
    data = first_batch(cfg, model)
    model.train()
    losses = model.loss(**data)
    seen = model.distill_losses['box'].seen
    boxes = [s.gt_instances.bboxes for s in data['data_samples']]
    assert len(seen['gt_bboxes']) == len(boxes)
    for got, want in zip(seen['gt_bboxes'], boxes):
        assert got is want
    assert seen['images'] is data['inputs']
    # the value, by hand on what the loss was given
    mask, diff = seen['mask'], seen['feat_s'] - seen['feat_t']
    assert 0 < mask.mean() < 1
    expected = 2.0 * (diff**2 * mask).sum() / (mask.sum() * diff.shape[1])
    torch.testing.assert_close(losses['distill.box'].detach(), expected)
    # the student side is the adapter's output: gradients reach both
    losses['distill.box'].backward()
    assert model.adapters['box'].convs[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('inputs,match', [
    (dict(gt_bboxes='batch.gt_boxes'),
     r"model\.losses\.box\.inputs\.gt_bboxes: 'batch\.gt_boxes' is not a "
     r"batch field; the batch fields are \[.*'batch\.gt_bboxes'"),
    (dict(gt_bboxes='roi.labels'),
     r"model\.losses\.box\.inputs\.gt_bboxes: 'roi\.labels' is neither a "
     r'pairing record'),
    (dict(gt_bboxes='batch.gt_bboxes', labels='batch.gt_labels'),
     r"model\.losses\.box\.inputs\.labels: BoxHintLoss\.forward takes no "
     r"argument 'labels'; its further arguments are \['gt_bboxes', "
     r"'images'\]"),
    (dict(gt_bboxes='batch.gt_bboxes', loss_weight='const.w'),
     r"model\.losses\.box\.inputs\.loss_weight: 'loss_weight' is also set"),
])
def test_bad_inputs_fail_at_build_naming_the_key(det_files, inputs, match):
    with pytest.raises(KeyError, match=match):
        build(box_hint_config(det_files, **inputs))


def test_a_batch_field_the_batch_lacks_fails_naming_it(det_files):
    cfg = box_hint_config(
        det_files, gt_bboxes='batch.gt_sem_seg', images='batch.inputs')
    model = build(cfg)
    data = first_batch(cfg, model)
    with pytest.raises(
            KeyError,
            match=r"model\.losses\.box\.inputs\.gt_bboxes: 'batch\."
            r"gt_sem_seg': the batch's data samples have no gt_sem_seg"):
        model.loss(**data)


def test_pairings_cannot_shadow_a_namespace(det_files):
    cfg = roi_config(det_files)
    cfg.model.pairings = dict(batch=cfg.model.pairings.roi)
    with pytest.raises(ValueError, match=r"model\.pairings\.batch: pairing "
                       r"names must be identifiers other than 'const', "
                       r"'batch'"):
        build(cfg)


def test_resolve_reads_each_namespace():
    student = nn.Module()
    student.decode_head = nn.Module()
    student.decode_head.ignore_index = 7
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = [SegDataSample(), SegDataSample()]
    for i, sample in enumerate(samples):
        sample.gt_sem_seg = PixelData(data=torch.full((1, 2, 2), 7 - i))
    inputs = torch.rand(2, 3, 2, 2)
    tap_s, tap_t, emb = torch.rand(1), torch.rand(1), torch.rand(1)
    step = Step(inputs, samples, student, ({'neck': tap_s}, {'neck': tap_t}),
                {'roi.emb': (emb, tap_t), 'roi.labels': tap_s},
                {'centers': emb})
    assert resolve('neck', step, 0) is tap_s
    assert resolve('neck', step, 1) is tap_t
    assert resolve('roi.emb', step, 0) is emb
    assert resolve('roi.emb', step, 1) is tap_t
    assert resolve('roi.labels', step) is tap_s
    assert resolve('const.centers', step) is emb
    assert resolve('batch.inputs', step) is inputs
    assert resolve('batch.data_samples', step) is samples
    assert resolve('batch.gt_sem_seg', step).shape == (2, 1, 2, 2)
    # ignore_index is the student decode head's: image 0 is all ignored
    valid = resolve('batch.valid_mask', step)
    assert valid.dtype == torch.bool
    assert not valid[0].any() and valid[1].all()
    assert resolve('batch.valid_mask', step) is valid  # once per step
    with pytest.raises(KeyError, match=r"'const\.other' is not set"):
        resolve('const.other', step)


def test_check_source_lists_what_exists():
    pairings = {'roi': (('cls', 'emb'), ('labels', ))}
    check_source('roi.labels', 'k', pairings)
    check_source('const.anything', 'k', pairings)
    for field in BATCH_FIELDS:
        check_source(f'batch.{field}', 'k', pairings)
    with pytest.raises(KeyError, match=r"k: pairing 'roi' has no plain "
                       r"record 'emb'; its plain records are \('labels',\)"):
        check_source('roi.emb', 'k', pairings)
    with pytest.raises(KeyError, match=r"k must be a source string, got 3"):
        check_source(3, 'k', pairings)
    with pytest.raises(KeyError, match=r"k: 'const\.' is neither"):
        check_source('const.', 'k', pairings)


def test_inputs_of_a_distill_loss_are_its_elementwise_arguments(det_files):
    cfg = roi_config(det_files)
    cfg.model.losses.nd.inputs['weights'] = 'roi.labels'
    with pytest.raises(
            KeyError,
            match=r"model\.losses\.nd\.inputs\.weights: NDLoss\.forward "
            r"takes no argument 'weights'; its further arguments are "
            r"\['labels', 'centers', 'weight', 'avg_factor', "
            r"'reduction_override'\]"):
        build(cfg)
    cfg = distill_config(det_files)
    cfg.model.losses.hint.inputs = dict(scale='batch.inputs')
    with pytest.raises(KeyError, match=r"FeatureHintLoss\.forward takes no "
                       r"argument 'scale'; its further arguments are "
                       r"\['weight', 'avg_factor', 'reduction_override'\]"):
        build(cfg)
