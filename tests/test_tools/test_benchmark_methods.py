"""tools/benchmark_methods.py end to end on a tiny digits set: teacher,
seeds, a method, the overhead figures, table and PNG; TeKAP variants."""
import importlib.util
import json
import os
import os.path as osp
import sys

from PIL import Image

from mmkd.datasets import make_digits
from tiny_setups import REPO, run_script

SHORT = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'param_scheduler=[]'
]


def load_tool():
    path = osp.join(REPO, 'tools', 'benchmark_methods.py')
    sys.path.insert(0, osp.dirname(path))
    spec = importlib.util.spec_from_file_location('benchmark_methods', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_method_benchmark_smoke(tmp_path):
    data = str(tmp_path / 'digits')
    make_digits(data, num_train=8, num_val=4, progress=False)
    work = tmp_path / 'bench'
    docs = str(tmp_path / 'docs' / 'benchmark.md')
    args = ('--methods', 'faster_rcnn.hint', '--seeds', '0', '1', '--data',
            data, '--work-dir', str(work), '--overhead-iters', '1',
            '--no-memory', '--pretrain-iters', '2', '--docs', docs,
            '--cfg-options', *SHORT)
    proc = run_script(osp.join(REPO, 'tools', 'benchmark_methods.py'), *args)
    table = (work / 'results.md').read_text()
    rows = [line for line in table.splitlines() if 'faster_rcnn' in line]
    assert [r.split('|')[2].strip() for r in rows] == [
        'teacher', 'baseline', 'hint'
    ]
    assert '(2)' in rows[1] and '(1)' in rows[0]  # two seeds, one teacher
    # backbones pretrained once, next to the data
    assert sorted(os.listdir(osp.join(data, 'pretrained'))) == [
        'resnet18_w16.pth', 'resnet34_w32.pth'
    ]
    assert 'hint' in proc.stdout
    results = json.loads((work / 'results.json').read_text())
    hint = results['faster_rcnn']['hint']
    assert len(hint['values']) == 2
    assert hint['overhead']['ratio'] > 0
    with Image.open(work / 'results.png') as img:
        assert img.format == 'PNG'
    # the report: the command that wrote it, the tables, plot and JSON
    report = (tmp_path / 'docs' / 'benchmark.md').read_text()
    assert ('python tools/benchmark_methods.py --methods faster_rcnn.hint'
            in report)
    assert rows[2] in report  # the hint row of results.md
    gains = [float(v) - float(b) for v, b in zip(
        hint['values'], results['faster_rcnn']['baseline']['values'])]
    assert f'| {gains[0]:+.3f} | {gains[1]:+.3f} |' in report
    assert (tmp_path / 'docs' / 'benchmark.png').is_file()
    assert json.loads((tmp_path / 'docs' / 'benchmark.json').read_text()) \
        == results
    assert all(w > 0 for w in hint['wall_s'])
    # a second call reuses every finished run
    again = run_script(osp.join(REPO, 'tools', 'benchmark_methods.py'),
                       *args)
    assert '[benchmark] faster_rcnn' not in again.stdout
    assert again.stdout.strip().endswith(f'report in {docs}')
    # a control (options for the students only, e.g. a learning rate):
    # tagged runs beside the others, the teacher shared and untouched
    tagged = run_script(
        osp.join(REPO, 'tools', 'benchmark_methods.py'), *args,
        '--student-cfg-options', 'optim_wrapper.optimizer.lr=0.0123',
        '--tag', 'lr0123')
    assert '[benchmark] faster_rcnn/teacher' not in tagged.stdout
    from mmengine.config import Config

    def used_lr(run, config):
        dumped = work / 'faster_rcnn' / run / f'faster_rcnn_{config}.py'
        return Config.fromfile(str(dumped)).optim_wrapper.optimizer.lr

    hint = 'r34_to_r18_digits_hint'
    assert used_lr('teacher', 'r34_digits') == 0.02
    assert used_lr('hint_seed0', hint) == 0.02
    assert used_lr('baseline_lr0123_seed0', 'r18_digits') == 0.0123
    assert used_lr('hint_lr0123_seed1', hint) == 0.0123
    report = (tmp_path / 'docs' / 'benchmark.md').read_text()
    assert 'trained with `optim_wrapper.optimizer.lr=0.0123`' in report


def test_student_options_need_a_tag(tmp_path):
    import subprocess

    def call(*extra):
        return subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'benchmark_methods.py'),
             '--methods', 'faster_rcnn.hint', '--work-dir', str(tmp_path),
             *extra], cwd=REPO, capture_output=True, text=True,
            env=dict(os.environ, PYTHONPATH=REPO))

    proc = call('--student-cfg-options', 'optim_wrapper.optimizer.lr=0.04')
    assert proc.returncode == 2
    assert ('--student-cfg-options optim_wrapper.optimizer.lr=0.04 needs '
            '--tag' in proc.stderr)
    proc = call('--tag', 'lr/0.04')
    assert proc.returncode == 2
    assert "--tag 'lr/0.04': letters, digits" in proc.stderr
    assert not os.listdir(tmp_path)  # nothing trained


def test_tekap_variants_wrap_logit_and_feature_losses(tmp_path):
    from mmengine.config import Config
    tool = load_tool()
    demo = osp.join(REPO, 'configs', 'demo')
    out = tool.with_tekap(
        osp.join(demo, 'faster_rcnn_r34_to_r18_digits_chen.py'),
        str(tmp_path / 'chen_tekap.py'))
    losses = Config.fromfile(out).model.losses
    hint, soft = losses.hint, losses.soft_cls
    assert hint.type == soft.type == 'mmkd.TeKAP'
    assert hint.num_views == 1 and hint.noise_std == 0.1  # features
    assert soft.num_views == 3 and soft.noise_std == 1.0  # logits
    assert hint.loss.type == 'mmkd.FeatureHintLoss' and hint.adapter
    assert hint.student == hint.teacher == 'neck'
    assert soft.loss == dict(type='mmkd.WeightedSoftCELoss', bg_weight=1.5,
                             loss_weight=0.5)
    # bounded regression has no TeKAP preset and stays as it is
    assert losses.bounded_reg.type == 'mmkd.BoundedRegressionLoss'
    # LD's distribution losses have no preset: no variant
    assert tool.with_tekap(
        osp.join(demo, 'gfl_r34_to_r18_digits_ld.py'),
        str(tmp_path / 'none.py')) is None


def test_pairs_and_methods_are_found_from_the_configs():
    tool = load_tool()
    assert sorted(tool.PAIRS) == ['faster_rcnn', 'gfl', 'pspnet', 'segformer']
    assert tool.PAIRS['pspnet']['metric'] == 'mIoU'
    assert tool.PAIRS['segformer']['metric'] == 'mIoU'
    assert tool.PAIRS['gfl']['metric'] == 'coco/bbox_mAP'
    assert {'faster_rcnn.nd', 'gfl.ld', 'pspnet.skd_pair',
            'segformer.mobilebert'} <= set(tool.METHODS)
    picked = tool.select_methods(['hint', 'faster_rcnn.chen'])
    assert [(name, pair) for name, pair, _ in picked] == [
        ('hint', 'faster_rcnn'), ('hint', 'pspnet'), ('chen', 'faster_rcnn')]
    import pytest
    with pytest.raises(SystemExit, match="no method 'kd'"):
        tool.select_methods(['kd'])


def test_sftn_variant_distils_from_the_exported_sftn_teacher(tmp_path):
    data = str(tmp_path / 'digits')
    make_digits(data, num_train=8, num_val=4, progress=False)
    work = tmp_path / 'bench'
    run_script(osp.join(REPO, 'tools', 'benchmark_methods.py'), '--methods',
               'gfl.ld', '--seeds', '0', '--sftn', '--data', data,
               '--work-dir', str(work), '--no-overhead', '--pretrain-iters',
               '2', '--cfg-options', *SHORT)
    results = json.loads((work / 'results.json').read_text())
    assert list(results['gfl']) == [
        'teacher', 'sftn teacher', 'baseline', 'ld', 'ld+sftn'
    ]
    sftn = work / 'gfl' / 'sftn_teacher'
    assert (sftn / 'teacher.pth').is_file()
    # the SFTN run's branches start from the pretrained weights next to the
    # data, as every other run's backbones
    from mmengine.config import Config
    inlined = Config.fromfile(str(sftn / 'sftn_config.py')).model
    assert inlined.student.backbone.init_cfg.checkpoint == osp.join(
        data, 'pretrained', 'resnet18_w16.pth')
    # ld+sftn distils from the exported SFTN teacher, ld from the plain one
    used = Config.fromfile(
        str(work / 'gfl' / 'ld+sftn_seed0' /
            'gfl_r34_to_r18_digits_ld.py')).model.teacher.checkpoint
    assert used == str(sftn / 'teacher.pth')
    plain = Config.fromfile(
        str(work / 'gfl' / 'ld_seed0' /
            'gfl_r34_to_r18_digits_ld.py')).model.teacher.checkpoint
    assert plain.startswith(str(work / 'gfl' / 'teacher' / 'iter_'))
    table = (work / 'results.md').read_text()
    sftn_row = [r for r in table.splitlines() if '| sftn teacher |' in r][0]
    assert sftn_row.rstrip(' |').endswith(')')  # no gain for a teacher


def test_teacher_option_finds_the_teacher_inside_netaug():
    tool = load_tool()
    demo = osp.join(REPO, 'configs', 'demo')
    runs = {
        name: tool.teacher_option(
            osp.join(demo, f'gfl_r34_to_r18_digits_{name}.py'), 't.pth')
        for name in ('crosskd', 'crosskd_netaug', 'netaug')
    }
    assert runs == dict(
        crosskd=['model.teacher.checkpoint=t.pth'],
        crosskd_netaug=['model.model.teacher.checkpoint=t.pth'],
        netaug=[])
    assert {'gfl.netaug', 'gfl.crosskd_netaug'} <= set(tool.METHODS)
