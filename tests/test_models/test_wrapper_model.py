"""The distiller and the SFTN teacher answer mmengine's three modes, and
refuse others, through one base (mmkd.models.base.WrapperModel)."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from mmkd.models import SFTNTeacher
from mmkd.models.base import WrapperModel
from tiny_setups import distill_config


def models(seg_files):
    cfg = distill_config(seg_files, tap='decode_head.conv_seg')
    init_default_scope(cfg.default_scope)
    distiller = MODELS.build(cfg.model)
    sftn = SFTNTeacher(teacher=seg_files['teacher'],
                       student=seg_files['student'])
    return dict(distiller=distiller, sftn=sftn)


def test_modes_dispatch_and_bad_modes_fail(seg_files):
    inputs = torch.rand(1, 3, 64, 64)
    for name, model in models(seg_files).items():
        assert isinstance(model, WrapperModel), name
        model.eval()
        # 'tensor' is the deployed model's raw output: the student's for the
        # distiller, the teacher's for SFTN
        inner = model.student if name == 'distiller' else model.teacher
        with torch.no_grad():
            assert torch.equal(model(inputs, mode='tensor'),
                               inner._forward(inputs))
        with pytest.raises(RuntimeError, match="invalid mode 'bogus'"):
            model(inputs, mode='bogus')
