import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from tiny_setups import REPO, ROI_LOSSES, roi_config


def build(cfg):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def roi(det_files):
    cfg = roi_config(det_files)
    model = build(cfg)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    data = model.data_preprocessor(next(iter(loader)), True)
    model.constants['roi_centers'] = torch.randn(4, 32)
    return model, data


def test_teacher_head_runs_on_the_students_rois(roi):
    model, data = roi
    model.train()
    _, _, _, paired = model.collect(data['inputs'], data['data_samples'])
    rois, labels = paired['roi.rois'], paired['roi.labels']
    assert rois.shape[1] == 5 and len(rois) == len(labels)
    # by hand: the teacher's FPN, its RoI extractor at those RoIs, its head
    teacher = model.teacher
    with torch.no_grad():
        feats = teacher.extract_feat(data['inputs'])
        bbox_feats = teacher.roi_head.bbox_roi_extractor(feats[:4], rois)
        seen = []
        handle = teacher.roi_head.bbox_head.fc_cls.register_forward_pre_hook(
            lambda m, args: seen.append(args[0]))
        cls_t, deltas_t = teacher.roi_head.bbox_head(bbox_feats)
        handle.remove()
    torch.testing.assert_close(paired['roi.cls'][1], cls_t)
    torch.testing.assert_close(paired['roi.emb'][1], seen[0])
    pos = labels < 3
    assert pos.any() and (~pos).any()
    per_class = deltas_t.view(len(rois), -1, 4)
    torch.testing.assert_close(paired['roi.reg'][1][pos],
                               per_class[pos.nonzero()[:, 0], labels[pos]])
    assert (paired['roi.reg'][1][~pos] == 0).all()
    assert (paired['roi.reg_weights'] == pos.float()).all()
    # the student side is the student's own head output on the same RoIs
    assert paired['roi.cls'][0].shape == cls_t.shape
    assert paired['roi.cls'][0].requires_grad and not cls_t.requires_grad


def test_roi_losses_train_the_student_only(roi):
    model, data = roi
    model.train()
    model.zero_grad()
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('distill.kd', 'distill.reg', 'distill.nd'):
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    (losses['distill.kd'] + losses['distill.nd']).backward()
    head = model.student.roi_head.bbox_head
    assert head.fc_cls.weight.grad.abs().sum() > 0
    assert head.shared_fcs[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_nd_without_centroids_says_how_to_get_them(det_files):
    model = build(roi_config(det_files))
    loader = Runner.build_dataloader(roi_config(det_files).train_dataloader)
    data = model.data_preprocessor(next(iter(loader)), True)
    with pytest.raises(
            KeyError,
            match=r"model.losses.nd.inputs.centers: "
            r"'const.roi_centers' is not set.*TeacherCentroidHook"):
        model.loss(data['inputs'], data['data_samples'])


def test_class_count_mismatch_fails_at_build(det_files, tmp_path):
    teacher = Config.fromfile(det_files['teacher'])
    teacher.model.roi_head.bbox_head.num_classes = 5
    cfg = roi_config(det_files)
    cfg.model.teacher = dict(config=teacher.model, checkpoint=None)
    with pytest.raises(
            ValueError,
            match=r'model.pairings.roi: the student '
            r'has 3 classes and the teacher 5'):
        build(cfg)


def test_bad_pairing_entries_fail_at_build(det_files):
    cfg = roi_config(det_files)
    cfg.model.pairings.roi.type = 'mmkd.RoIPairng'
    with pytest.raises(
            KeyError,
            match=r"model.pairings.roi.type: "
            r"'mmkd.RoIPairng' is not a registered pairing"):
        build(cfg)
    cfg = roi_config(det_files)
    cfg.model.losses = dict(kd=dict(ROI_LOSSES['kd'], student='roi.logits'))
    with pytest.raises(
            KeyError,
            match=r"model.losses.kd.student: pairing "
            r"'roi' has no paired record 'logits'"):
        build(cfg)


def test_teacher_rpn_on_the_students_sampled_anchors(det_files):
    cfg = roi_config(
        det_files,
        losses=dict(
            rpn_kd=dict(
                type='mmkd.WeightedSoftCELoss',
                student='rpn.cls',
                teacher='rpn.cls'),
            rpn_reg=dict(
                type='mmkd.BoundedRegressionLoss',
                student='rpn.reg',
                teacher='rpn.reg',
                inputs=dict(
                    target='rpn.reg_targets', weight='rpn.reg_weights'))))
    cfg.model.pairings = dict(rpn=dict(type='mmkd.RPNPairing'))
    model = build(cfg)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    data = model.data_preprocessor(next(iter(loader)), True)
    losses, _, _, paired = model.collect(data['inputs'], data['data_samples'])
    labels = paired['rpn.labels']
    # the student's sampler keeps 256 anchors per image, some positive
    assert len(labels) == 2 * 256 and (labels == 0).any()
    with torch.no_grad():
        scores, deltas = model.teacher.rpn_head(
            model.teacher.extract_feat(data['inputs']))
    flat = torch.cat([s.permute(0, 2, 3, 1).reshape(-1) for s in scores])
    cls_t = paired['rpn.cls'][1]
    assert (cls_t[:, 1] == 0).all()
    # every teacher logit comes from the teacher's own map, in anchor order
    assert torch.isin(cls_t[:, 0], flat).all()
    model.zero_grad()
    losses = model.loss(data['inputs'], data['data_samples'])
    (losses['distill.rpn_kd'] + losses['distill.rpn_reg']).backward()
    assert model.student.rpn_head.rpn_cls.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_chen_bounded_regression_is_normalised_like_the_box_loss(det_files):
    """Paper Eq. 1: nu * L_b is summed over the positives and divided by N,
    the sampled RoIs (M sampled anchors at the RPN), as the student's own
    box loss; the method fragment wires the pairings' avg_factor in."""
    chen = Config.fromfile(osp.join(REPO, 'configs/_base_/methods/chen.py'))
    cfg = roi_config(det_files, losses=chen.chen.losses)
    cfg.model.pairings = chen.chen.pairings
    model = build(cfg)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    data = model.data_preprocessor(next(iter(loader)), True)
    seen = {}

    def record(name):

        def hook(module, args, kwargs, *output):
            seen.setdefault(name, []).append((args, kwargs, output))

        return hook

    student = model.student
    student.rpn_head.loss_bbox.register_forward_pre_hook(
        record('rpn_box'), with_kwargs=True)
    student.roi_head.bbox_head.loss_bbox.register_forward_pre_hook(
        record('roi_box'), with_kwargs=True)
    for name in ('bounded_reg', 'rpn_bounded_reg'):
        model.distill_losses[name].register_forward_hook(
            record(name), with_kwargs=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    # mmdet's own normalisers: every sampled RoI, every sampled anchor
    (_, roi_kwargs, _), = seen['roi_box']
    assert roi_kwargs['avg_factor'] == 2 * 32  # 32 sampled RoIs per image
    # at the RPN: the sampled positives and negatives, one factor for every
    # level (about 256 per image)
    rpn_factor, = {float(kw['avg_factor']) for _, kw, _ in seen['rpn_box']}
    assert abs(rpn_factor - 2 * 256) <= 2
    for name, factor in (('bounded_reg', roi_kwargs['avg_factor']),
                         ('rpn_bounded_reg', rpn_factor)):
        (args, kwargs, (out, )), = seen[name]
        pred_s, pred_t = args
        target, weight = kwargs['target'], kwargs['weight']
        assert float(kwargs['avg_factor']) == factor
        assert abs(factor - len(target)) <= 2  # every sampled row
        assert 0 < weight.sum() < len(weight)  # some positives, not all
        err_s = ((pred_s - target)**2).sum(1)
        err_t = ((pred_t - target)**2).sum(1)
        active = (weight > 0) & (err_s > err_t)
        expected = 0.5 * err_s[active].sum() / factor
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(losses[f'distill.{name}'], expected)
