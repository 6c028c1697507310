"""Teacher, student and distilled student on the digits set, on a CPU.

    python tools/quickstart.py [--fast] [--work-dir work_dirs/quickstart]
        [--distill configs/demo/faster_rcnn_r34_to_r18_digits_nd.py]
        [--scratch]

Makes the digits data if missing (tools/make_digits.py), pretrains the
backbones on digit classification if missing (tools/pretrain_digits.py,
into ``<data>/pretrained/``; ``--scratch`` starts them from nothing instead),
trains the teacher
(or reuses ``<work-dir>/teacher/teacher.pth``), the baseline student and a
distilled student (``--distill``: any Faster R-CNN config of
configs/demo/, hint imitation by default), each with tools/train.py and
seed 0, evaluates them with mmdet's CocoMetric, prints a table and writes
``curves.png`` (validation mAP over iterations) and ``bars.png`` in the
work dir. ``--fast`` runs a few iterations on a tiny set: it checks the
pipeline, not the gain.
"""
import argparse
import glob
import json
import os.path as osp
import shutil
import subprocess
import sys

from pretrain_digits import prepare, scratch_options  # tools/ is on sys.path

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')
TEACHER = osp.join(DEMO, 'faster_rcnn_r34_digits.py')
STUDENT = osp.join(DEMO, 'faster_rcnn_r18_digits.py')
DISTILLED = osp.join(DEMO, 'faster_rcnn_r34_to_r18_digits_hint.py')
METRIC = 'coco/bbox_mAP'


def data_options(root: str, detection: bool = True) -> list:
    """--cfg-options pointing a digits config at the set in ``root``."""
    root = root.rstrip('/') + '/'
    opts = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    if detection:  # CocoMetric reads the annotations itself
        opts += [
            f'{split}_evaluator.ann_file={root}annotations/val.json'
            for split in ('val', 'test')
        ]
    return opts


def backbone_options(config: str,
                     data: str,
                     scratch: bool = False,
                     iters: int = None) -> list:
    """--cfg-options starting ``config``'s backbones from the digit
    classification weights in ``<data>/pretrained/`` (pretrained first if
    missing, for ``iters`` iterations) or, with ``scratch``, from nothing."""
    if scratch:
        return scratch_options(config)
    extra = {} if iters is None else dict(iters=iters)
    return prepare(config, osp.join(data, 'pretrained'), **extra)


def fast_options(config: str) -> list:
    opts = [
        'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'param_scheduler=[]',
        'default_hooks.logger.interval=2'
    ]
    return opts + quick_hook_options(config)


def quick_hook_options(config: str) -> list:
    """``--cfg-options`` giving every hook its smoke-run settings (e.g.
    the centroids of 2 batches), as the hooks that provide constants say."""
    from mmengine.config import Config

    from mmkd.engine import ConstantHook
    from mmkd.registry import HOOKS
    opts = []
    for i, cfg in enumerate(Config.fromfile(config).get('custom_hooks', [])):
        cls = HOOKS.get(cfg.get('type'))
        if isinstance(cls, type) and issubclass(cls, ConstantHook):
            opts += [
                f'custom_hooks.{i}.{key}={value}'
                for key, value in HOOKS.build(dict(cfg)).quick_settings(
                ).items()
            ]
    return opts


def train(name: str, config: str, work_dir: str, options: list) -> str:
    run_dir = osp.join(work_dir, name)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', run_dir,
        '--cfg-options', *options
    ]
    print(f'[quickstart] training the {name}', flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return run_dir


def curve(run_dir: str, metric: str = METRIC) -> list:
    """``[(iteration, value), ...]`` of ``metric`` from the run's last
    scalars.json; empty when it was never logged (CocoMetric logs nothing
    when no box clears the score threshold)."""
    logs = sorted(
        glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')))
    points = []
    if logs:
        with open(logs[-1]) as f:
            for line in f:
                record = json.loads(line)
                if metric in record:
                    points.append((record['step'], record[metric]))
    return points


def plot(curves: dict, work_dir: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        ax.plot(*zip(*points), marker='o', label=name)
    ax.set_xlabel('iteration')
    ax.set_ylabel('val bbox mAP')
    ax.set_title('digits: validation during training')
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(work_dir, 'curves.png'))
    fig, ax = plt.subplots(figsize=(5, 4))
    names = list(curves)
    ax.bar(
        names, [curves[n][-1][1] for n in names],
        color=['tab:gray', 'tab:blue', 'tab:orange'])
    ax.set_ylabel('final val bbox mAP')
    fig.tight_layout()
    fig.savefig(osp.join(work_dir, 'bars.png'))


def main():
    parser = argparse.ArgumentParser(description='mmkd quick start')
    parser.add_argument(
        '--fast',
        action='store_true',
        help='a few iterations on a tiny set (a smoke run)')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--data', default=None, help='digits data folder')
    parser.add_argument(
        '--distill',
        default=DISTILLED,
        help='the distillation config of the third run')
    parser.add_argument(
        '--scratch',
        action='store_true',
        help='backbones from scratch, not pretrained on digits')
    args = parser.parse_args()
    work_dir = args.work_dir or osp.join(
        REPO, 'work_dirs', 'quickstart_fast' if args.fast else 'quickstart')
    data = args.data or osp.join(REPO, 'data',
                                 'digits_fast' if args.fast else 'digits')
    sys.path.insert(0, REPO)
    from mmkd.datasets import make_digits
    sizes = dict(num_train=16, num_val=8) if args.fast else {}
    make_digits(data, **sizes)

    teacher_ckpt = osp.join(work_dir, 'teacher', 'teacher.pth')
    curves = {}
    runs = (('teacher', TEACHER), ('student', STUDENT), ('distilled',
                                                         args.distill))
    for name, config in runs:
        options = data_options(data) + ['randomness.seed=0']
        if args.fast:
            options += fast_options(config)
        if name == 'distilled':
            options.append(f'model.teacher.checkpoint={teacher_ckpt}')
        if name == 'teacher' and osp.isfile(teacher_ckpt):
            print(f'[quickstart] reusing the teacher {teacher_ckpt}')
            run_dir = osp.join(work_dir, 'teacher')
        else:
            options += backbone_options(config, data, args.scratch,
                                        2 if args.fast else None)
            run_dir = train(name, config, work_dir, options)
        if name == 'teacher' and not osp.isfile(teacher_ckpt):
            last = max(
                glob.glob(osp.join(run_dir, 'iter_*.pth')), key=osp.getmtime)
            shutil.copy(last, teacher_ckpt)
        curves[name] = curve(run_dir)
        if not curves[name]:
            print(f'[quickstart] {run_dir}: no detections, mAP taken as 0')
            curves[name] = [(0, 0.0)]

    final = {n: c[-1][1] for n, c in curves.items()}
    lines = ['| model | config | val bbox mAP |', '|---|---|---|']
    lines += [
        f'| {n} | {osp.basename(c)} | {final[n]:.3f} |' for n, c in runs
    ]
    gain = final['distilled'] - final['student']
    lines.append(f'| gain (distilled - student) | | {gain:+.3f} |')
    table = '\n'.join(lines)
    print(table)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    plot(curves, work_dir)
    print(f'[quickstart] table and plots in {work_dir}')


if __name__ == '__main__':
    main()
