"""Every assumption of ``mmkd.models.pairings.mmdet_calls`` about how mmdet
calls its head modules, checked on real mmdet models: an mmdet upgrade
that breaks one fails here, by name."""
import pytest
import torch
from mmdet.models.losses import CrossEntropyLoss, L1Loss
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from mmkd.models.pairings.mmdet_calls import (HookSet, extractor_rois,
                                              loss_inputs, loss_labels)
from tiny_setups import (DENSE_CONFIG, DENSE_HEADS, roi_config, write_coco,
                         write_config)


def watched_loss(cfg, watch):
    """Build the student of ``cfg``, hook ``watch(student, hooks, seen)``
    and run its ``loss()`` on the first batch."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    student = MODELS.build(Config.fromfile(cfg.model.student).model if
                           isinstance(cfg.model.student, str) else
                           cfg.model.student)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    data = student.data_preprocessor(next(iter(loader)), True)
    hooks, seen = HookSet(), {}
    watch(student, hooks, seen)
    student.loss(data['inputs'], data['data_samples'])
    hooks.remove()
    return student, data, seen


def test_loss_inputs_read_positional_and_keyword_calls_alike():
    pred, target, weight = torch.rand(4, 3), torch.rand(4, 3), torch.rand(4)
    for loss in (L1Loss(), CrossEntropyLoss()):
        a = loss_inputs(loss, (pred, target, weight), dict(avg_factor=2.))
        b = loss_inputs(loss, (pred, ), dict(weight=weight, avg_factor=2.,
                                             **{list_target(loss): target}))
        for call in (a, b):
            assert call['pred'] is pred and call['target'] is target
            assert call['weight'] is weight and call['avg_factor'] == 2.
    assert loss_inputs(L1Loss(), (pred, target), {})['avg_factor'] is None


def list_target(loss) -> str:
    import inspect
    return list(inspect.signature(loss.forward).parameters)[1]


def test_faster_rcnn_roi_head_calls(det_files):
    """StandardRoIHead: the extractor gets (N, 5) RoIs; the box head returns
    (cls_score, bbox_pred) of N rows; fc_cls reads the embedding; loss_cls
    gets (scores, labels, weights, avg_factor) and loss_bbox (positive
    deltas, targets, weights, avg_factor = all N sampled RoIs)."""

    def watch(student, hooks, seen):
        roi = student.roi_head
        hooks.pre(roi.bbox_roi_extractor, lambda m, a, k: seen.update(
            rois=extractor_rois(m, a, k)))
        hooks.post(roi.bbox_head, lambda m, a, out: seen.update(out=out))
        hooks.pre(roi.bbox_head.fc_cls, lambda m, a, k: seen.update(
            emb=a[0]))
        hooks.pre(roi.bbox_head.loss_cls, lambda m, a, k: seen.update(
            cls=loss_inputs(m, a, k)))
        hooks.pre(roi.bbox_head.loss_bbox, lambda m, a, k: seen.update(
            bbox=loss_inputs(m, a, k)))

    cfg = roi_config(det_files)
    student, data, seen = watched_loss(cfg, watch)
    head = student.roi_head.bbox_head
    rois, (cls_score, bbox_pred) = seen['rois'], seen['out']
    n = len(rois)
    assert rois.shape == (n, 5) and n > 0
    assert set(rois[:, 0].long().tolist()) <= set(
        range(len(data['data_samples'])))
    assert cls_score.shape == (n, head.num_classes + 1)
    assert bbox_pred.shape == (n, 4 * head.num_classes)
    assert seen['emb'].shape == (n, head.fc_cls.in_features)
    cls = seen['cls']
    assert cls['pred'] is cls_score
    labels = cls['target']
    assert labels.shape == (n, ) and not labels.is_floating_point()
    assert 0 <= labels.min() and labels.max() <= head.num_classes
    assert cls['weight'].shape == (n, )
    bbox = seen['bbox']
    num_pos = int((labels < head.num_classes).sum())
    assert bbox['pred'].shape == bbox['target'].shape == (num_pos, 4)
    assert bbox['avg_factor'] == n  # every sampled RoI


def test_rpn_head_calls(det_files):
    """RPNHead: one loss_cls and one loss_bbox call per FPN level with
    (scores, labels, weights) and (deltas, targets, weights, avg_factor)."""

    def watch(student, hooks, seen):
        head = student.rpn_head
        hooks.pre(head.loss_cls, lambda m, a, k: seen.setdefault(
            'cls', []).append(loss_inputs(m, a, k)))
        hooks.pre(head.loss_bbox, lambda m, a, k: seen.setdefault(
            'bbox', []).append(loss_inputs(m, a, k)))

    student, _, seen = watched_loss(roi_config(det_files), watch)
    levels = len(student.rpn_head.prior_generator.strides)
    assert len(seen['cls']) == len(seen['bbox']) == levels
    for cls, bbox in zip(seen['cls'], seen['bbox']):
        assert cls['pred'].shape[0] == cls['target'].shape[0]
        assert cls['weight'].shape == cls['target'].shape
        assert not cls['target'].is_floating_point()
        assert bbox['pred'].shape == bbox['target'].shape
        assert bbox['pred'].shape[-1] == 4
        assert bbox['avg_factor'] == seen['bbox'][0]['avg_factor'] > 0


@pytest.mark.parametrize('name', ['retinanet', 'atss', 'fcos'])
def test_dense_head_calls(name, tmp_path):
    """RetinaHead and ATSSHead: one loss_cls call per level with (scores,
    labels, label weights, avg_factor), rows as the head's outputs
    flattened (image, y, x, anchor); FCOSHead: one loss_cls call for all
    levels, and loss_bbox weighted by the positives' centerness targets,
    over their sum."""
    path = write_config(
        str(tmp_path / 'student.py'), DENSE_CONFIG,
        write_coco(str(tmp_path / 'data')), base=8, neck=16,
        stacked_convs=1, **DENSE_HEADS[name])
    cfg = Config.fromfile(path)
    cfg.model = dict(student=path)

    def watch(student, hooks, seen):
        head = student.bbox_head
        hooks.post(head, lambda m, a, out: seen.update(out=out))
        for loss in ('loss_cls', 'loss_bbox'):
            hooks.pre(getattr(head, loss), lambda m, a, k, loss=loss: seen.
                      setdefault(loss, []).append(loss_inputs(m, a, k)))

    student, _, seen = watched_loss(cfg, watch)
    head, scores = student.bbox_head, seen['out'][0]
    rows = [
        s.permute(0, 2, 3, 1).reshape(-1, head.cls_out_channels)
        for s in scores
    ]
    calls = seen['loss_cls']
    if name == 'fcos':
        assert len(calls) == 1 and calls[0]['weight'] is None
        assert torch.equal(calls[0]['pred'], torch.cat(rows))
        bbox, = seen['loss_bbox']
        assert bbox['weight'].shape == (len(bbox['pred']), )
        assert float(bbox['avg_factor']) == float(bbox['weight'].sum()) > 0
        return
    assert len(calls) == len(scores)
    for call, level in zip(calls, rows):
        assert torch.equal(call['pred'], level)
        labels = loss_labels(call)
        assert labels.shape == call['weight'].shape == (len(level), )
        assert call['avg_factor'] == calls[0]['avg_factor'] >= 1


def test_pairing_hooks_are_removed_with_the_distiller(det_files):
    cfg = roi_config(det_files)
    cfg.model.pairings['rpn'] = dict(type='mmkd.RPNPairing')
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)

    def count(module):
        return sum(
            len(m._forward_pre_hooks) + len(m._forward_hooks)
            for m in module.modules())

    assert count(model.student) > 0 and count(model.teacher) > 0
    model.remove_hooks()
    assert count(model.student) == 0 and count(model.teacher) == 0
