import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import KnowledgeDistillationKLDivLoss
from torch.testing import assert_close

from mmkd.models.losses import LDLoss
from mmkd.registry import MODELS


def reference(logits_s, logits_t, weight, temperature, avg_factor):
    """Loop over rows: w * T^2 * mean_bins p_t (log p_t - log p_s)."""
    total = 0.
    for z_s, z_t, w in zip(logits_s.tolist(), logits_t.tolist(),
                           weight.tolist()):
        e_s = [math.exp(v / temperature) for v in z_s]
        e_t = [math.exp(v / temperature) for v in z_t]
        kl = sum(t / sum(e_t) * math.log((t / sum(e_t)) / (s / sum(e_s)))
                 for s, t in zip(e_s, e_t))
        total += w * temperature**2 * kl / len(z_s)
    return total / avg_factor


def test_hand_computed():
    # p_s = (1/2, 1/2), p_t = (1/4, 3/4) at T = 1:
    # KL = 1/4 log(1/2) + 3/4 log(3/2), averaged over 2 bins, / avg_factor 4
    z_s, z_t = torch.zeros(1, 2), torch.tensor([[0., math.log(3.)]])
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    loss = LDLoss(temperature=1., loss_weight=1.)
    assert_close(loss(z_s, z_t), torch.tensor(kl / 2 / 4))
    # T = 2 on doubled logits is the same distributions, times T^2 = 4
    loss = LDLoss(temperature=2., loss_weight=0.5, avg_factor=None)
    assert_close(loss(2 * z_s, 2 * z_t), torch.tensor(0.5 * 4 * kl / 2))
    # a row weight of 3 triples it
    assert_close(
        LDLoss(temperature=1., loss_weight=1.)(z_s, z_t, torch.tensor([3.])),
        torch.tensor(3 * kl / 2 / 4))


@pytest.mark.parametrize('temperature,avg_factor', [(10., 4.), (2., 16.)])
def test_matches_loop_and_mmdet(temperature, avg_factor):
    torch.manual_seed(0)
    z_s, z_t = torch.randn(8, 17), torch.randn(8, 17) * 5
    weight = torch.rand(8)
    loss = LDLoss(temperature, avg_factor, loss_weight=0.25)
    expected = 0.25 * reference(z_s, z_t, weight, temperature, avg_factor)
    assert_close(loss(z_s, z_t, weight), torch.tensor(expected))
    mmdet = KnowledgeDistillationKLDivLoss(loss_weight=0.25, T=temperature)
    assert_close(
        loss(z_s, z_t, weight),
        mmdet(z_s, z_t, weight=weight, avg_factor=avg_factor))


def test_gradient_reaches_student_only():
    torch.manual_seed(0)
    z_s = torch.randn(4, 17, requires_grad=True)
    z_t = torch.randn(4, 17, requires_grad=True)
    weight = torch.rand(4, requires_grad=True)
    LDLoss()(z_s, z_t, weight).backward()
    assert z_s.grad.abs().sum() > 0
    assert z_t.grad is None and weight.grad is None
    # equal distributions: zero loss and zero gradient
    same = torch.randn(4, 17, requires_grad=True)
    value = LDLoss()(same, same.detach() * 1.)
    value.backward()
    assert_close(value, torch.tensor(0.))
    assert_close(same.grad, torch.zeros_like(same))


def test_no_rows_gives_zero_with_graph():
    z_s = torch.zeros(0, 17, requires_grad=True)
    value = LDLoss()(z_s, torch.zeros(0, 17), torch.zeros(0))
    assert value.item() == 0 and not torch.isnan(value)
    value.backward()
    assert z_s.grad.shape == (0, 17)


def test_bad_inputs_and_args():
    with pytest.raises(ValueError, match='same shape'):
        LDLoss()(torch.zeros(4, 17), torch.zeros(4, 9))
    with pytest.raises(ValueError, match='same shape'):
        LDLoss()(torch.zeros(4, 17, 1), torch.zeros(4, 17, 1))
    with pytest.raises(ValueError, match='one weight per row'):
        LDLoss()(torch.zeros(4, 17), torch.zeros(4, 17), torch.ones(16))
    with pytest.raises(ValueError, match='temperature'):
        LDLoss(temperature=0)
    with pytest.raises(ValueError, match='avg_factor'):
        LDLoss(avg_factor=0)


def test_registered():
    loss = MODELS.build(dict(type='mmkd.LDLoss', temperature=2.))
    assert isinstance(loss, LDLoss) and loss.temperature == 2.
    z = torch.randn(3, 5)
    assert_close(
        loss(z, z.flip(1)), 0.25 * 4 * F.kl_div(
            F.log_softmax(z / 2, 1),
            F.softmax(z.flip(1) / 2, 1),
            reduction='none').mean(1).sum() / 4)


def official_ld_head_level(bbox_pred, soft_targets, cls_score, soft_label,
                           labels, label_weights, vlr, reg_max):
    """LD terms of one level, written afresh from HikariTJU/LD
    ``mmdet/models/dense_heads/ld_head.py`` ``LDHead.loss_single`` with
    ``mmdet/models/losses/kd_loss.py`` ``knowledge_distillation_kl_div_loss``
    and ``utils.weight_reduce_loss`` (mean with an avg_factor: weighted sum
    / avg_factor), at the head's defaults: ``loss_ld`` and ``loss_ld_vlr``
    weight 0.25, T 10; ``loss_kd`` weight 10, T 2."""

    def kd(pred, soft, weight, T, avg_factor, loss_weight):
        p_t = torch.softmax(soft / T, dim=1)
        log_p_s = torch.log_softmax(pred / T, dim=1)
        per_row = (p_t * (p_t.log() - log_p_s)).mean(dim=1) * T * T
        return loss_weight * (per_row * weight).sum() / avg_factor

    num_classes, bins = cls_score.shape[1], reg_max + 1
    pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
    quality = cls_score.detach().sigmoid().max(dim=1)[0][pos]
    edge_weight = quality[:, None].expand(-1, 4).reshape(-1)
    loss_ld = kd(bbox_pred[pos].reshape(-1, bins),
                 soft_targets[pos].reshape(-1, bins), edge_weight, 10., 4.,
                 0.25)
    loss_kd = kd(cls_score[pos], soft_label[pos], label_weights[pos], 2.,
                 pos.shape[0], 10.)
    remain = (vlr > 0).nonzero().squeeze(1)
    vlr_weight = vlr[remain][:, None].expand(-1, 4).reshape(-1)
    loss_vlr = kd(bbox_pred[remain].reshape(-1, bins),
                  soft_targets[remain].reshape(-1, bins), vlr_weight, 10., 16.,
                  0.25)
    return loss_ld, loss_kd, loss_vlr


def test_matches_official_ld_head_values_and_gradients():
    """The three LD terms of configs/_base_/methods/ld.py, on the rows and
    weights GFLPairing builds, against the official head, level by level."""
    torch.manual_seed(0)
    reg_max, num_classes, sizes = 4, 3, (12, 5)
    levels = []
    for size in sizes:
        labels = torch.full((size, ), num_classes)
        labels[torch.randperm(size)[:size // 3]] = torch.randint(
            0, num_classes, (size // 3, ))
        vlr = torch.rand(size) * (torch.rand(size) > 0.5)
        levels.append(
            dict(
                bbox_pred=torch.randn(size, 4 * (reg_max + 1),
                                      dtype=torch.float64) * 3,
                soft_targets=torch.randn(size, 4 * (reg_max + 1),
                                         dtype=torch.float64) * 3,
                cls_score=torch.randn(size, num_classes, dtype=torch.float64),
                soft_label=torch.randn(size, num_classes,
                                       dtype=torch.float64),
                labels=labels,
                label_weights=torch.rand(size, dtype=torch.float64) + 0.5,
                vlr=vlr.double()))
    reg_s = torch.cat([lv['bbox_pred'] for lv in levels]).requires_grad_()
    cls_s = torch.cat([lv['cls_score'] for lv in levels]).requires_grad_()
    # official: one loss_single call per level, the per-level losses summed
    starts = [0, sizes[0]]
    official = [0., 0., 0.]
    for start, size, lv in zip(starts, sizes, levels):
        terms = official_ld_head_level(
            reg_s[start:start + size], lv['soft_targets'],
            cls_s[start:start + size], lv['soft_label'], lv['labels'],
            lv['label_weights'], lv['vlr'], reg_max)
        official = [o + t for o, t in zip(official, terms)]
    # mmkd: rows and weights over all levels at once, as GFLPairing.records
    cat = lambda key: torch.cat([lv[key] for lv in levels])  # noqa: E731
    labels, vlr = cat('labels'), cat('vlr')
    reg_t, cls_t = cat('soft_targets'), cat('soft_label')
    level = torch.repeat_interleave(torch.arange(2), torch.tensor(sizes))
    pos = labels < num_classes
    per_level = torch.bincount(level[pos], minlength=2)
    bins, region = reg_max + 1, vlr > 0
    ld = LDLoss(temperature=10, loss_weight=0.25)(
        reg_s[pos].reshape(-1, bins), reg_t[pos].reshape(-1, bins),
        cls_s.detach().sigmoid().max(1).values[pos].repeat_interleave(4))
    kd = LDLoss(temperature=2, avg_factor=1.0, loss_weight=10.0)(
        cls_s[pos], cls_t[pos],
        cat('label_weights')[pos] / per_level[level[pos]])
    vlr_loss = LDLoss(temperature=10, avg_factor=16.0, loss_weight=0.25)(
        reg_s[region].reshape(-1, bins), reg_t[region].reshape(-1, bins),
        vlr[region].repeat_interleave(4))
    for ours, ref in zip((ld, kd, vlr_loss), official):
        assert_close(ours, ref)
        grads = torch.autograd.grad(
            ours, (reg_s, cls_s), retain_graph=True, allow_unused=True)
        ref_grads = torch.autograd.grad(
            ref, (reg_s, cls_s), retain_graph=True, allow_unused=True)
        for grad, ref_grad in zip(grads, ref_grads):
            if ref_grad is None:
                assert grad is None or not grad.any()
            else:
                assert_close(grad, ref_grad)
