"""The teacher's forward made cheaper (``model.teacher.fold_bn``,
``channels_last``, ``cuda_graph``) computes what the plain forward does.

CPUs run the folded and NHWC paths when they are switched on; the CUDA
graph test runs where a GPU is at hand.
"""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from test_single_teacher import first_batch
from test_teacher_precision import flat
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmkd.utils.fast_teacher import bn_folded, find_fold_pairs, fold_error
from mmkd.utils.precision import cast_floats
from tiny_setups import distill_config


def build(cfg, **teacher):
    cfg.model.teacher.update(teacher)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    # running statistics away from (0, 1), so that folding matters
    gen = torch.Generator().manual_seed(1)
    for module in model.teacher.modules():
        if isinstance(module, _BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


def test_folded_conv_computes_conv_then_batchnorm():
    """bn(conv(x)) by hand against the folded convolution, with and
    without a conv bias; the conv's own bias and weight come back."""
    torch.manual_seed(0)
    for bias in (False, True):
        conv = nn.Conv2d(3, 5, 3, padding=1, bias=bias)
        bn = nn.BatchNorm2d(5, eps=1e-3)
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
        model = nn.Sequential(conv, bn).eval().requires_grad_(False)
        x = torch.randn(2, 3, 8, 8)
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        expected = ((conv(x) - bn.running_mean.view(1, -1, 1, 1)) *
                    scale.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1))
        weight = conv.weight.data_ptr()
        with bn_folded([(conv, bn)]):
            assert conv.bias is not None
            assert torch.equal(bn(x), x)  # the BatchNorm is skipped
            torch.testing.assert_close(
                model(x), expected, rtol=1e-5, atol=1e-5)
        assert conv.weight.data_ptr() == weight
        assert (conv.bias is None) is not bias
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_pairs_are_traced_and_a_conv_read_twice_fails_the_check():
    """The trace pairs a BatchNorm with the conv whose output it reads; a
    conv also read elsewhere (a residual of its raw output) is paired too,
    and the check then sees the folded forward differ."""

    class Twice(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)
            self.bn.running_mean.fill_(1.0)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    model = Twice().eval().requires_grad_(False)
    x = torch.randn(1, 3, 4, 4)
    pairs = find_fold_pairs(model, lambda: model(x))
    assert pairs == [(model.conv, model.bn)]
    plain = model(x)
    with bn_folded(pairs):
        folded = model(x)
    assert fold_error([plain], [folded]) > 0.1
    seq = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).eval()
    assert fold_error([seq(x)], [seq(x)]) == 0


def test_tapped_convs_and_training_batchnorms_are_not_paired():
    model = nn.Sequential(
        nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1),
        nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).eval()
    model[2].register_forward_hook(lambda m, i, o: None)  # a tap
    model[5].train()
    pairs = find_fold_pairs(model, lambda: model(torch.randn(1, 3, 2, 2)))
    assert pairs == [(model[0], model[1])]


def test_folded_teacher_gives_the_plain_records(det_files):
    """fold_bn=True on a real detector teacher: every BatchNorm that the
    forward reaches is folded, the records equal the plain ones, and the
    teacher is its plain self afterwards (weights, biases, BatchNorms)."""
    plain = build(distill_config(det_files), fold_bn=False)
    model = build(distill_config(det_files), fold_bn=True)
    data = first_batch(distill_config(det_files), model)
    inputs, samples = data['inputs'], data['data_samples']
    state = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    norms = sum(
        isinstance(m, _BatchNorm) for m in model.teacher.backbone.modules())
    for _ in range(2):  # the second call reuses the pairs and weights
        records = model._teacher_records(inputs, samples)
        expected = plain._teacher_records(inputs, samples)
        for a, b in zip(flat(records), flat(expected)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    pairs = model.__dict__['_teacher_fold_pairs']
    assert len(pairs) == norms > 0
    assert all(
        conv.bias is None and 'forward' not in vars(bn)
        for conv, bn in pairs)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_channels_last_bf16_records_come_back_contiguous_fp32(det_files):
    """channels_last=True: the teacher reads NHWC input and weights, and its
    records reach the losses in fp32 and the default layout, as the plain
    bf16 forward's (within bf16's rounding)."""
    cfg = distill_config(det_files)
    plain = build(distill_config(det_files), precision='bf16')
    model = build(cfg, precision='bf16', channels_last=True, fold_bn=False)
    data = first_batch(cfg, model)
    seen = []
    hook = model.teacher.backbone.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(
            memory_format=torch.channels_last)))
    records = model._teacher_records(data['inputs'], data['data_samples'])
    hook.remove()
    assert seen == [True]
    expected = plain._teacher_records(data['inputs'], data['data_samples'])
    for a, b in zip(flat(records), flat(expected)):
        assert a.dtype == torch.float32 and a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.05)
    assert all(p.dtype == torch.float32 and p.is_contiguous()
               for p in model.teacher.parameters())


def test_cast_floats_also_restores_the_default_layout():
    nhwc = torch.ones(1, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    labels = torch.arange(2)
    out = cast_floats(dict(a=(nhwc, labels), b='x'), torch.bfloat16)
    assert out['a'][0].is_contiguous() and out['a'][0].dtype == torch.bfloat16
    assert out['a'][1] is labels and out['b'] == 'x'


@pytest.mark.parametrize('key,value', [('fold_bn', 'yes'),
                                       ('channels_last', 1.5),
                                       ('cuda_graph', 'auto')])
def test_bad_switch_fails_at_build_naming_the_key(det_files, key, value):
    cfg = distill_config(det_files)
    cfg.model.teacher[key] = value
    init_default_scope(cfg.default_scope)
    with pytest.raises(ValueError, match=rf'model\.teacher\.{key} must be '
                       rf'one of .*got {value!r}'):
        MODELS.build(cfg.model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_graph_replays_the_eager_records(det_files):
    """cuda_graph=True on a GPU: the replayed records equal the eager ones
    for new inputs, and new weights are seen (the graphs are recaptured)."""
    cfg = distill_config(det_files)
    eager = build(distill_config(det_files), fold_bn=True).cuda()
    graphed = build(cfg, fold_bn=True, cuda_graph=True).cuda()
    data = first_batch(cfg, graphed)
    samples = data['data_samples']
    for step in range(3):
        inputs = data['inputs'] + step
        if step == 2:
            for model in (eager, graphed):
                for p in model.teacher.parameters():
                    p.data.mul_(0.5)
        expected = eager._teacher_records(inputs, samples)
        records = graphed._teacher_records(inputs, samples)
        for a, b in zip(flat(records), flat(expected)):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    assert len(graphed.__dict__['_teacher_graphs'].graphs) == 1


def test_a_conv_shared_across_levels_is_not_folded():
    """One conv run on two levels, each with its own BatchNorm: folding
    either BatchNorm into it would be wrong for the other level."""

    class Shared(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bns = nn.ModuleList([nn.BatchNorm2d(3), nn.BatchNorm2d(3)])

        def forward(self, xs):
            return [bn(self.conv(x)) for x, bn in zip(xs, self.bns)]

    model = Shared().eval()
    xs = [torch.randn(1, 3, 4, 4), torch.randn(1, 3, 2, 2)]
    assert find_fold_pairs(model, lambda: model(xs)) == []
