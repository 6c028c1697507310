"""MobileBERT-style transfer between SegFormer (MiT) backbones: token taps,
linear adapters on the channels, attention taps at an output index, through
the real distiller and Runner."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from mmseg.models.backbones.mit import EfficientMultiheadAttention

from mmkd.models.adapters import ConvAdapter
from mmkd.utils.export import student_state_dict
from tiny_setups import (MIT_CONFIG, distill_config, save_teacher,
                         write_config, write_seg)

#: the first block of the first stage, and its attention weights
BLOCK = 'backbone.layers.0.1.0'
ATTN = BLOCK + '.attn.attn[1]'


def _mit(path, root, base, layers):
    return write_config(path, MIT_CONFIG, root, base=base, neck=16,
                        base5=5 * base, layers=layers, heads=[1, 2, 5, 8])


@pytest.fixture(scope='module')
def mit_files(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('mit'))
    write_seg(osp.join(root, 'data'))
    student = _mit(osp.join(root, 'student.py'), osp.join(root, 'data'), 16,
                   [1, 1, 1, 1])
    teacher = _mit(osp.join(root, 'teacher.py'), osp.join(root, 'data'), 32,
                   [2, 1, 1, 1])
    ckpt = save_teacher(teacher, osp.join(root, 'teacher.pth'))
    return dict(root=root, student=student, teacher=teacher, ckpt=ckpt)


def _config(files, **losses):
    cfg = distill_config(files)
    cfg.model.losses = losses or dict(
        fmt=dict(type='mmkd.FeatureMapTransferLoss', student=BLOCK,
                 teacher='backbone.layers.0.1.1', loss_weight=0.01),
        at=dict(type='mmkd.AttentionTransferLoss', student=ATTN,
                teacher='backbone.layers.0.1.1.attn.attn[1]'))
    return cfg


def _build(cfg):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg.model))


def test_token_and_attention_transfer_train_the_student_only(mit_files):
    cfg = _config(mit_files)
    model = _build(cfg)
    # the student's 16 token channels mapped linearly onto the teacher's 32
    assert isinstance(model.adapters['fmt'], ConvAdapter)
    assert model.adapters['fmt'].convs[0].weight.shape[:2] == (32, 16)
    assert 'at' not in model.adapters
    # (B, queries, keys), head-averaged; keys reduced 8 x 8 (sr_ratio 8)
    (shape, ) = model.tap_shapes['student'][ATTN]
    assert len(shape) == 3 and shape[1] == 64 * shape[2]
    loader = Runner.build_dataloader(cfg.train_dataloader)
    batch = model.data_preprocessor(next(iter(loader)), True)
    losses = model(**batch, mode='loss')
    assert float(losses['distill.fmt']) > 0
    assert float(losses['distill.at']) > 0
    (losses['distill.fmt'] + losses['distill.at']).backward()
    attn = model.student.backbone.layers[0][1][0].attn.attn
    assert attn.in_proj_weight.grad is not None
    assert model.adapters['fmt'].convs[0].weight.grad is not None
    assert all(p.grad is None for p in model.teacher.parameters())
    # later layers feed neither loss
    assert model.student.backbone.layers[3][1][0].attn.attn.in_proj_weight \
        .grad is None
    assert not any('adapters' in k for k in student_state_dict(
        model.state_dict()))


def test_bf16_teacher_keeps_both_losses_within_tolerance(mit_files):
    """The teacher's forward in bf16 (as 'auto' runs it on CUDA): both
    MobileBERT terms within the tolerance the CNN methods are held to
    (test_loss_values.py), and the student's own losses unchanged."""
    cfg = _config(mit_files)
    data = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    values = {}
    for precision in ('fp32', 'bf16'):
        cfg.model.teacher.precision = precision
        model = _build(cfg)
        batch = model.data_preprocessor(copy.deepcopy(data), True)
        torch.manual_seed(3)
        with torch.no_grad():
            values[precision] = {
                k: float(sum(v) if isinstance(v, list) else v)
                for k, v in model(**batch, mode='loss').items()
            }
    for key, value in values['fp32'].items():
        rel = 0.02 if key.startswith('distill.') else 1e-6
        assert values['bf16'][key] == pytest.approx(value, rel=rel), key
    assert values['bf16']['distill.at'] != values['fp32']['distill.at']


def test_attention_taps_leave_the_outputs_unchanged(mit_files):
    model = _build(_config(mit_files))
    cfg = Config.fromfile(mit_files['student'])
    init_default_scope(cfg.default_scope)
    plain = MODELS.build(cfg.model)
    plain.load_state_dict(model.student.state_dict())
    plain.eval()
    model.eval()
    inputs = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = plain._forward(inputs)
        with model.student_taps.recording():
            tapped = model.student._forward(inputs)
            records = model.student_taps.collect()
    assert torch.equal(expected, tapped)
    # the weights nn.MultiheadAttention returns: rows sum to one
    weights = records[ATTN]
    assert torch.allclose(weights.sum(-1), torch.ones(()))
    assert isinstance(model.student.backbone.layers[0][1][0].attn,
                      EfficientMultiheadAttention)


def test_mismatched_attention_maps_fail_at_build(mit_files):
    # stage 2 attends over a quarter of stage 1's queries
    cfg = _config(mit_files, at=dict(
        type='mmkd.AttentionTransferLoss', student=ATTN,
        teacher='backbone.layers.1.1.0.attn.attn[1]'))
    with pytest.raises(ValueError, match=r"model.losses.at: the student's "
                       r'attention maps are \(1, 1024, 16\)'):
        _build(cfg)


def test_output_index_of_a_tensor_output_fails_at_build(mit_files):
    cfg = _config(mit_files, at=dict(
        type='mmkd.AttentionTransferLoss', student=BLOCK + '[1]',
        teacher=ATTN))
    with pytest.raises(IndexError, match=r"model.losses: tap "
                       r"'backbone.layers.0.1.0\[1\]' asks for output 1"):
        _build(cfg)


def test_short_training_through_the_runner(mit_files, tmp_path):
    cfg = _config(mit_files)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    hub = runner.message_hub
    assert hub.get_scalar('train/distill.at').current() > 0
    assert hub.get_scalar('train/distill.fmt').current() > 0


def test_swin_window_attention_is_tapped_window_by_window():
    from mmdet.models.backbones import SwinTransformer

    from mmkd.models.distillers.taps import TapRecorder
    torch.manual_seed(0)
    swin = SwinTransformer(embed_dims=24, depths=(2, 2), num_heads=(3, 6),
                           strides=(4, 2), out_indices=(0, 1),
                           window_size=4)
    swin.eval()
    name = 'stages.0.blocks.1.attn.w_msa.softmax'  # the shifted block
    taps = TapRecorder(swin, [name], 'model.losses.at')
    inputs = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = swin(inputs)
        with taps.recording():
            tapped = swin(inputs)
            attn = taps.collect()[name]
    assert all(torch.equal(a, b) for a, b in zip(expected, tapped))
    # 8 x 8 tokens in 4 x 4 windows: 2 images x 4 windows, 3 heads
    assert attn.shape == (8, 3, 16, 16)
    assert torch.allclose(attn.sum(-1), torch.ones(()))
