"""Taps record what the module returned, or fail: never values that the
model changed in place afterwards."""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch import nn

from mmkd.models.distillers.taps import TapRecorder
from tiny_setups import distill_config


def _convs():
    # mmcv's ConvModule applies an inplace ReLU to its BN's output
    torch.manual_seed(0)
    return nn.Sequential(
        ConvModule(3, 4, 3, padding=1, norm_cfg=dict(type='BN')),
        ConvModule(4, 4, 3, padding=1, norm_cfg=dict(type='BN')))


@pytest.mark.parametrize('grad', [True, False])
def test_a_tap_whose_output_is_changed_in_place_fails(grad):
    model = _convs()
    taps = TapRecorder(model, ['0.bn'], 'model.losses.hint')
    with torch.set_grad_enabled(grad), taps.recording():
        model(torch.randn(2, 3, 8, 8))
    # what the hook recorded is now the ReLU's output, not the BN's
    assert taps.records['0.bn'][0].min() >= 0
    with pytest.raises(RuntimeError,
                       match=r"model.losses.hint: the output of tap '0.bn' "
                       r'\(BatchNorm2d\) was changed in place'):
        taps.collect()


def test_a_tap_on_a_final_output_records_it():
    model = _convs()
    taps = TapRecorder(model, ['0', '1.conv'], 'model.losses.hint')
    inputs = torch.randn(2, 3, 8, 8)
    with taps.recording():
        out = model(inputs)
    records = taps.collect()
    assert torch.equal(records['0'], model[0](inputs))
    assert torch.equal(model[1].activate(model[1].bn(records['1.conv'])),
                       out)


def test_a_config_tapping_a_tensor_changed_in_place_fails_at_build(
        seg_files):
    # BasicBlock's bn2 output gets the residual added in place, then ReLU;
    # the distiller's probe forward at build time finds it
    cfg = distill_config(seg_files, tap='backbone.layer1.0.bn2')
    cfg.work_dir = seg_files['root'] + '/inplace_tap'
    init_default_scope('mmseg')
    with pytest.raises(RuntimeError,
                       match=r"model.losses: the output of tap "
                       r"'backbone.layer1.0.bn2' "
                       r'\(BatchNorm2d\) was changed in place'):
        Runner.from_cfg(cfg)
