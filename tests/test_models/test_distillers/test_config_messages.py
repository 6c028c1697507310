"""Bad loss settings fail at build time naming the config key, the bad
value and what would be valid."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from mmkd.models import LDLoss
from tiny_setups import distill_config


def build(cfg):
    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


def test_misspelled_argument_names_key_and_close_match(det_files):
    with pytest.raises(
            TypeError,
            match=r"model.losses.hint.loss_wieght: FeatureHintLoss has no "
            r"argument 'loss_wieght'; did you mean 'loss_weight'\? its "
            r"arguments are \[.*'loss_weight'"):
        build(distill_config(det_files, loss_wieght=0.5))


def test_misspelled_argument_of_a_wrapped_loss(det_files):
    cfg = distill_config(det_files)
    cfg.model.losses.hint = dict(
        type='mmkd.TeKAP',
        student='neck',
        teacher='neck',
        loss=dict(type='mmkd.FeatureHintLoss', los_weight=1.0))
    with pytest.raises(
            TypeError,
            match=r"model.losses.hint.loss.los_weight: FeatureHintLoss .* "
            r"did you mean 'loss_weight'"):
        build(cfg)


@pytest.mark.parametrize('temperature', [0, -1.0, float('nan'),
                                         float('inf')])
def test_temperature_errors_name_the_loss_entry(det_files, temperature):
    cfg = distill_config(det_files)
    cfg.model.losses.kd_cls = dict(
        type='mmkd.LDLoss',
        student='neck',
        teacher='neck',
        temperature=temperature)
    with pytest.raises(
            ValueError,
            match=r'model.losses.kd_cls: temperature must be a finite '
            rf'number > 0, got temperature={temperature}'):
        build(cfg)


def test_ld_refuses_nan():
    for bad in (dict(temperature=float('nan')), dict(avg_factor=float('nan'))):
        with pytest.raises(ValueError, match='nan'):
            LDLoss(**bad)
    assert torch.isfinite(LDLoss()(torch.zeros(2, 17), torch.ones(2, 17)))


def test_loss_names_that_mmengine_logs_as_learning_rates(det_files):
    cfg = distill_config(det_files)
    cfg.model.losses = dict(hint_vlr=cfg.model.losses.hint)
    with pytest.raises(
            ValueError,
            match=r"model.losses.hint_vlr: mmengine logs every key ending in "
            r"'lr' \(distill.hint_vlr\) as a learning rate"):
        build(cfg)
