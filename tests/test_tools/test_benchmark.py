"""tools/benchmark.py and tools/benchmark_table.py on CPU: the critic is
method work, the settings travel with the figures, --amp reaches the
student's optimizer, and the table's rows and limits."""
import argparse
import importlib.util
import json
import os.path as osp

import pytest
from mmengine.config import Config

from tiny_setups import REPO, run_script

SKD = osp.join(REPO, 'configs', 'demo', 'pspnet_r34_to_r18_digits_skd.py')
LD = osp.join(REPO, 'configs', 'demo', 'gfl_r34_to_r18_digits_ld.py')


def load(tool):
    spec = importlib.util.spec_from_file_location(
        tool, osp.join(REPO, 'tools', f'{tool}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def bench():
    return load('benchmark')


def namespace(config, **kwargs):
    settings = dict(
        config=config, cfg_options=None, teacher_precision=None, amp=False,
        img_size=128, batch_size=2, iters=1, warmup=0, device='cpu')
    return argparse.Namespace(**dict(settings, **kwargs))


def test_critic_step_is_timed_and_counted_as_method_work(tmp_path):
    out = tmp_path / 'skd.json'
    run_script(
        osp.join(REPO, 'tools', 'benchmark.py'), SKD, '--img-size', '128',
        '--iters', '1', '--warmup', '0', '--no-memory', '--json', str(out))
    figures = json.loads(out.read_text())
    med = figures['median_s']
    assert 0 < med['critic'] < med['kd']
    assert figures['ratio'] == pytest.approx(
        med['kd'] / (med['student'] + med['teacher'] + med['critic']))
    assert figures['device'].startswith('cpu')
    assert (figures['dtype'], figures['teacher_dtype'], figures['amp'],
            figures['batch'], figures['img_size']) == ('float32', 'float32',
                                                       False, 2, 128)


def test_a_teacher_with_savings_is_also_timed_plain_and_losses_inside(
        tmp_path):
    """A bf16 teacher (autocast runs on CPU too): the plain fp32 forward is
    a phase of the same run, and the step is compared with it; with
    --time-losses, the adapters' and each loss's forward are timed inside
    the step."""
    out = tmp_path / 'ld.json'
    run_script(
        osp.join(REPO, 'tools', 'benchmark.py'), LD, '--img-size', '128',
        '--iters', '2', '--warmup', '0', '--no-memory', '--teacher-precision',
        'bf16', '--time-losses', '--json', str(out))
    figures = json.loads(out.read_text())
    med = figures['median_s']
    assert figures['teacher_dtype'] == 'bfloat16'
    assert med['teacher_fp32'] > 0 and med['pairing'] > 0
    assert figures['vs_fp32'] == pytest.approx(
        med['kd'] / (med['student'] + med['teacher_fp32'] + med['pairing']))
    assert figures['ratio'] == pytest.approx(
        med['kd'] / (med['student'] + med['teacher'] + med['pairing']))
    names = Config.fromfile(LD).model.losses.keys()
    parts = [med['adapters']] + [med[f'loss.{n}'] for n in names]
    assert all(t > 0 for t in parts)
    assert sum(parts) < med['kd']


def test_plain_teacher_runs_no_extra_phase(bench):
    args = namespace(LD)
    cfg = bench.load_config(args)
    assert bench.plain_teacher(cfg, args)
    steps, _ = bench.build_phases(cfg, args)
    assert list(steps) == ['student', 'teacher', 'kd']
    args = namespace(LD, teacher_precision='bf16')
    cfg = bench.load_config(args)
    assert not bench.plain_teacher(cfg, args)
    assert list(bench.build_phases(cfg, args)[0]) == [
        'student', 'teacher', 'teacher_fp32', 'kd'
    ]


def test_table_takes_the_limit_from_the_row_where_it_was_timed():
    """A row that timed its plain fp32 teacher is measured against that;
    one that did not, against its config's fp32 row."""
    table = load('benchmark_table')

    def row(variant, kd, **med):
        return dict(config='c', amp=False, variant=variant,
                    median_s=dict(kd=kd, **med),
                    vs_fp32=kd / (med['student'] + med.get('teacher_fp32', 0)
                                  + 1) if 'teacher_fp32' in med else None)

    rows = [row('fp32', 12.0, student=8.0, teacher=2.0),
            row('teacher', 9.0, student=7.0, teacher=1.0, teacher_fp32=1.0,
                pairing=1.0),
            row('teacher-cast', 11.0, student=8.0, teacher=1.0)]
    table.limit_ratios(rows)
    assert [r['vs_fp32_limit'] for r in rows] == pytest.approx(
        [12 / 10, 9 / 9, 11 / 10])


def test_settings_name_the_teacher_precision_and_amp(bench):
    args = namespace(SKD, teacher_precision='bf16', amp=True)
    cfg = bench.load_config(args)
    assert cfg.model.teacher.precision == 'bf16'
    meta = bench.setting(args, cfg)
    assert (meta['teacher_dtype'], meta['dtype'], meta['amp']) == (
        'bfloat16', 'float16', True)
    # on CPU 'auto' is full precision
    cfg = bench.load_config(namespace(SKD))
    assert bench.setting(namespace(SKD), cfg)['teacher_dtype'] == 'float32'


def test_settings_name_the_teachers_savings(bench):
    """fold_bn / channels_last / cuda_graph as resolved on the device: all
    off on CPU by default, as set where the config sets them."""
    args = namespace(SKD)
    meta = bench.setting(args, bench.load_config(args))
    assert (meta['teacher_fold_bn'], meta['teacher_channels_last'],
            meta['teacher_cuda_graph']) == (False, False, False)
    args = namespace(
        SKD,
        cfg_options={
            'model.teacher.fold_bn': True,
            'model.teacher.channels_last': True
        })
    meta = bench.setting(args, bench.load_config(args))
    assert meta['teacher_fold_bn'] and meta['teacher_channels_last']


def test_table_variants_set_the_teachers_keys():
    table = load('benchmark_table')
    args = argparse.Namespace(
        seg_img_size=64, img_size=128, batch_size=2, iters=1, warmup=0,
        num_gt=4, device='cpu')
    plain = table.run_args(args, SKD, 'fp32', True)
    assert plain.cfg_options == {
        'model.teacher.fold_bn': False,
        'model.teacher.channels_last': False,
        'model.teacher.cuda_graph': False
    }
    assert plain.teacher_precision == 'fp32' and plain.img_size == 64
    graph = table.run_args(args, SKD, 'amp+teacher+graph', True)
    assert graph.cfg_options['model.teacher.cuda_graph'] is True
    assert graph.cfg_options['model.teacher.fold_bn'] == 'auto'
    assert graph.amp and graph.teacher_precision == 'auto'


def test_profile_teacher_folds_and_times_each_mode(tmp_path):
    """tools/profile_teacher.py: one row per mode, the BatchNorms of the
    ResNet teacher folded only where the mode folds them."""
    out = tmp_path / 'profile.json'
    run_script(
        osp.join(REPO, 'tools', 'profile_teacher.py'),
        osp.join(REPO, 'configs', 'demo',
                 'faster_rcnn_r34_to_r18_digits_hint.py'), '--img-size', '64',
        '--iters', '2', '--warmup', '1', '--modes', 'fp32', 'fp32-fold',
        '--json', str(out))
    rows = json.loads(out.read_text())
    assert [r['mode'] for r in rows] == ['fp32', 'fp32-fold']
    assert rows[0]['folded'] == 0 and rows[1]['folded'] > 0
    assert all(r['wall_ms'] > 0 and r['kernel_ms'] is None for r in rows)


def test_amp_reaches_the_student_alone_too(bench):
    """With the distiller's constructor (SKD: student and critic), --amp
    goes to the 'student' entry, which also trains the student alone."""
    cfg = bench.load_config(namespace(SKD, amp=True))
    student = bench.student_optim_cfg(cfg.optim_wrapper)
    assert student['type'] == 'AmpOptimWrapper'
    assert student['loss_scale'] == 'dynamic'
    assert student['optimizer'] == cfg.optim_wrapper.student.optimizer
    assert 'critic' not in student
    plain = Config.fromfile(LD).optim_wrapper
    assert bench.student_optim_cfg(plain) is plain


def test_table_rows_and_limits(tmp_path):
    out, md = tmp_path / 'table.json', tmp_path / 'table.md'
    run_script(
        osp.join(REPO, 'tools', 'benchmark_table.py'), LD, '--img-size',
        '128', '--iters', '1', '--warmup', '0', '--variants', 'fp32',
        'teacher', '--json', str(out), '--markdown', str(md))
    rows = json.loads(out.read_text())
    assert [r['variant'] for r in rows] == ['fp32', 'teacher']
    fp32 = rows[0]['median_s']
    limit = fp32['student'] + fp32['teacher'] + fp32['pairing']
    for row in rows:  # each step over the fp32 row's student + teacher
        assert row['vs_fp32_limit'] == pytest.approx(
            row['median_s']['kd'] / limit)
    assert rows[0]['vs_fp32_limit'] == pytest.approx(rows[0]['ratio'])
    table = md.read_text()
    assert table.count('| gfl_r34_to_r18_digits_ld |') == 2
    assert 'Device: cpu' in table


def test_synthetic_instance_masks_fill_their_boxes(bench):
    import torch
    boxes = torch.tensor([[2., 3., 6., 5.], [0., 0., 1., 8.]])
    masks = bench.box_masks(boxes, 8)
    assert (masks.height, masks.width, len(masks)) == (8, 8, 2)
    assert masks.masks[0].sum() == 4 * 2 and masks.masks[0][3:5, 2:6].all()
    assert masks.masks[1].sum() == 8 and masks.masks[1][:, 0].all()
