"""Every mmkd method on the digits sets, over several seeds.

    python tools/benchmark_methods.py [--seeds 0 1 2] [--methods NAME ...]
        [--tekap] [--work-dir work_dirs/method_benchmark] [--data DIR]
        [--no-overhead] [--scratch]

For each student/teacher pair the chosen methods need (Faster R-CNN, GFL and
PSPNet on the digits sets, ``configs/demo/``) it trains the teacher once
(seed 0), then for every seed the baseline student and each method's
distilled student with ``tools/train.py``, all on the same schedule. It reads
each run's last validation metric, runs ``tools/benchmark.py`` on each
method config at the digits batch (overhead ratio and peak memory), and
writes ``results.md`` (mean ± std) and ``results.png`` in the work dir.
Backbones start from digit classification (tools/pretrain_digits.py, into
``<data>/pretrained/``, made once), or from nothing with ``--scratch``.
``--tekap`` adds each method with TeKAP on its logit and feature losses.
The runs of one seed are paired: the distiller draws nothing from the
training's random stream, so every distilled student of a seed starts from
the baseline's initialisation and sees its data order.

Pairs and methods are found, not listed: a pair is a
``configs/demo/_base_/{pair}_{teacher}_to_{student}_digits.py``, its methods
the ``{pair}_{teacher}_to_{student}_digits_{method}.py`` beside it. A new
method config there is in the benchmark, as ``<pair>.<method>``.

A finished run leaves ``result.json`` in its folder and is not trained
again, so the command can be stopped and started again.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import time

from quickstart import backbone_options, curve, data_options  # in tools/

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')
# What a validation metric is called in the tables.
METRIC_TITLES = {'coco/bbox_mAP': 'bbox mAP', 'mIoU': 'mIoU (%)'}
PAIR_BASE = re.compile(r'^(?P<pair>.+)_(?P<teacher>[^_]+)_to_'
                       r'(?P<student>[^_]+)_digits\.py$')


def find_pairs(demo: str = DEMO) -> dict:
    """The student/teacher pairs of ``configs/demo/``, read off the files:
    each ``_base_/{pair}_{teacher}_to_{student}_digits.py`` with its
    ``{pair}_{teacher}_digits.py`` and ``{pair}_{student}_digits.py``; the
    metric is the student's validation metric."""
    from mmengine.config import Config
    pairs = {}
    for path in sorted(glob.glob(osp.join(demo, '_base_', '*_digits.py'))):
        match = PAIR_BASE.match(osp.basename(path))
        if match is None:
            continue
        pair, teacher, student = match.group('pair', 'teacher', 'student')
        student_cfg = f'{pair}_{student}_digits.py'
        evaluator = Config.fromfile(osp.join(demo, student_cfg)).val_evaluator
        metric = ('coco/bbox_mAP' if 'Coco' in evaluator['type'] else
                  evaluator.get('iou_metrics', ['mIoU'])[0])
        sftn = f'{pair}_{teacher}_sftn_{student}_digits.py'
        pairs[pair] = dict(
            teacher=f'{pair}_{teacher}_digits.py',
            student=student_cfg,
            # the pair's SFTN teacher config, if it has one (--sftn)
            sftn=sftn if osp.isfile(osp.join(demo, sftn)) else None,
            prefix=f'{pair}_{teacher}_to_{student}_digits_',
            metric=metric,
            title=f'{pair} {teacher.upper()} -> {student.upper()}, '
            f'{METRIC_TITLES.get(metric, metric)}')
    return pairs


def find_methods(pairs: dict, demo: str = DEMO) -> dict:
    """``{'<pair>.<method>': (pair, config)}``: every method config of a
    pair, ``{pair}_{teacher}_to_{student}_digits_{method}.py``."""
    methods = {}
    for pair, spec in pairs.items():
        for path in sorted(glob.glob(osp.join(demo, spec['prefix'] + '*'))):
            method = osp.basename(path)[len(spec['prefix']):-len('.py')]
            methods[f'{pair}.{method}'] = (pair, osp.basename(path))
    return methods


PAIRS = find_pairs()
METHODS = find_methods(PAIRS)


def select_methods(names: list) -> list:
    """``[(name, pair, config)]`` for ``--methods``: a full name
    (``faster_rcnn.hint``) or a method of every pair that has it
    (``hint``)."""
    chosen = {}
    for name in names:
        found = [key for key in METHODS
                 if name in (key, key.split('.', 1)[1])]
        if not found:
            raise SystemExit(
                f'--methods: no method {name!r}; the digits configs give '
                f'{sorted(METHODS)}')
        chosen.update(dict.fromkeys(found))
    return [(key.split('.', 1)[1], *METHODS[key]) for key in chosen]


def parse_args():
    parser = argparse.ArgumentParser(description='mmkd method benchmark')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--methods',
        nargs='+',
        default=list(METHODS),
        help='methods by <pair>.<method> (e.g. faster_rcnn.nd) or by '
        f'method for every pair that has it (e.g. hint); all: '
        f'{sorted(METHODS)}')
    parser.add_argument(
        '--tekap',
        action='store_true',
        help='also each method with TeKAP on top')
    parser.add_argument(
        '--work-dir', default=osp.join(REPO, 'work_dirs', 'method_benchmark'))
    parser.add_argument('--data', default=osp.join(REPO, 'data', 'digits'))
    parser.add_argument(
        '--no-overhead',
        action='store_true',
        help='skip tools/benchmark.py (ratio and memory)')
    parser.add_argument(
        '--overhead-iters',
        type=int,
        default=10,
        help='timed iterations of tools/benchmark.py')
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='tools/benchmark.py --no-memory (no peak memory on CPU)')
    parser.add_argument(
        '--docs',
        help='also write the full report to this Markdown file (e.g. '
        'docs/benchmark.md), with its plot and JSON beside it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='appended to every training run (e.g. a '
        'shorter train_cfg.max_iters for a smoke run)')
    parser.add_argument(
        '--student-cfg-options',
        nargs='+',
        default=[],
        help='appended to the students\' runs only, baseline and distilled, '
        'never the teacher\'s (e.g. optim_wrapper.optimizer.lr=0.04 for a '
        'learning-rate control); needs --tag')
    parser.add_argument(
        '--tag',
        help='a name for these students\' runs: their directories are '
        '{method}_{tag}_seed{seed}, beside the untagged ones, and the '
        'teacher is shared')
    parser.add_argument(
        '--sftn',
        action='store_true',
        help='also train each pair\'s SFTN teacher ({pair}_{teacher}_sftn_'
        '{student}_digits.py) and distil every method from it too')
    parser.add_argument(
        '--scratch',
        action='store_true',
        help='backbones from scratch, not pretrained on digits')
    parser.add_argument(
        '--pretrain-iters',
        type=int,
        default=None,
        help='iterations of tools/pretrain_digits.py when it has to run')
    args = parser.parse_args()
    if args.student_cfg_options and not args.tag:
        parser.error(
            f'--student-cfg-options {" ".join(args.student_cfg_options)} '
            'needs --tag (e.g. --tag lr004): without one these runs would '
            'share their directories with the runs without the options, and '
            'a finished run would be reused as if it had them')
    if args.tag is not None and not re.fullmatch(r'[A-Za-z0-9.-]+',
                                                 args.tag):
        parser.error(f'--tag {args.tag!r}: letters, digits, "." and "-" '
                     'only (it names directories)')
    return args


def train(config: str, run_dir: str, pair: str, options: list, args) -> dict:
    """Train (unless done before) and return ``{'metric', 'curve'}``."""
    done = osp.join(run_dir, 'result.json')
    if osp.isfile(done):
        with open(done) as f:
            return json.load(f)
    metric = PAIRS[pair]['metric']
    detection = metric.startswith('coco')
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', run_dir,
        '--cfg-options', *data_options(args.data, detection), *options,
        *backbone_options(config, args.data, args.scratch,
                          args.pretrain_iters), *args.cfg_options
    ]
    print(f'[benchmark] {osp.relpath(run_dir, args.work_dir)}', flush=True)
    start = time.time()
    with open(osp.join(_mkdir(run_dir), 'train.log'), 'w') as log:
        proc = subprocess.run(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    points = curve(run_dir, metric)
    if proc.returncode != 0:
        raise RuntimeError(f'training failed ({proc.returncode}); see '
                           f'{osp.join(run_dir, "train.log")}')
    # CocoMetric logs nothing when no box clears the score threshold
    result = dict(
        metric=points[-1][1] if points else 0.0,
        curve=points,
        wall_s=round(time.time() - start, 1))
    with open(done, 'w') as f:
        json.dump(result, f)
    return result


def teacher_option(config: str, checkpoint: str) -> list:
    """``--cfg-options`` pointing ``config``'s teacher at ``checkpoint``:
    ``model.teacher`` of a distiller, ``model.model.teacher`` of one that
    NetAug wraps; none for a config without a teacher (NetAug alone)."""
    from mmengine.config import Config
    model, key = Config.fromfile(config).model, 'model'
    while 'teacher' not in model:
        if not isinstance(model.get('model'), dict):
            return []
        model, key = model.model, f'{key}.model'
    return [f'{key}.teacher.checkpoint={checkpoint}']


def sftn_config(config: str, out: str, args) -> str:
    """Write the SFTN config ``config`` with its teacher and student model
    configs inlined, their backbones started as the benchmark starts them
    (pretrained weights next to ``--data``, or ``--scratch``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    for side in ('teacher', 'student'):
        path = cfg.model[side]
        side_cfg = Config.fromfile(path)
        options = backbone_options(path, args.data, args.scratch,
                                   args.pretrain_iters)
        side_cfg.merge_from_dict(
            {k: _value(v) for k, v in (o.split('=', 1) for o in options)})
        cfg.model[side] = side_cfg.model
    cfg.dump(out)
    return out


def _value(text: str):
    return None if text == 'None' else text


def _mkdir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def with_tekap(config: str, out: str) -> str:
    """Write ``config`` with TeKAP around its logit and feature losses."""
    from mmengine.config import Config

    from mmkd.models.distillers.specs import SPEC_KEYS
    from mmkd.models.losses.tekap import tekap_preset
    from mmkd.registry import MODELS
    cfg = Config.fromfile(config)
    wrapped = []
    if 'losses' not in cfg.model:  # not a distiller (NetAug)
        return None
    for name, loss in cfg.model.losses.items():
        # each loss class says whether and how TeKAP applies to it
        cls = MODELS.get(loss.get('type'))
        preset = tekap_preset(cls) if isinstance(cls, type) else None
        if preset is None:
            continue
        inner = {k: v for k, v in loss.items() if k not in SPEC_KEYS}
        spec = {k: loss[k] for k in SPEC_KEYS if k in loss}
        cfg.model.losses[name] = dict(
            type='mmkd.TeKAP', **spec, **preset, loss=inner)
        wrapped.append(name)
    if not wrapped:
        return None
    cfg.dump(out)
    return out


def overhead(config: str, out: str, iters: int, memory: bool) -> dict:
    """tools/benchmark.py's figures at the digits batch (8 images of
    128x128), cached in ``out``."""
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'benchmark.py'), config, '--img-size', '128',
        '--batch-size', '8', '--iters',
        str(iters), '--warmup',
        str(min(3, iters)), '--json', out
    ] + ([] if memory else ['--no-memory'])
    print(f'[benchmark] overhead of {osp.basename(config)}', flush=True)
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def summary(values: list) -> tuple:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def table(results: dict) -> str:
    costs = any('overhead' in row for rows in results.values()
                for row in rows.values())
    head = ['pair', 'run', 'student metric, mean ± std (seeds)',
            'gain over baseline']
    if costs:
        head += ['overhead ratio', 'peak memory, step (MiB over idle)']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for pair, rows in results.items():
        base, _ = summary(rows['baseline']['values'])
        for run, row in rows.items():
            if not row['values']:
                continue
            mean, std = summary(row['values'])
            gain = '' if run in ('baseline', ) or run.endswith('teacher') \
                else f'{mean - base:+.3f}'
            cells = [PAIRS[pair]['title'], run,
                     f'{mean:.3f} ± {std:.3f} ({len(row["values"])})', gain]
            if costs:
                cost = row.get('overhead') or {}
                peak = cost.get('peak_mib', {})
                cells += [
                    f"{cost['ratio']:.2f}" if 'ratio' in cost else '',
                    f"{peak['kd']:.0f} (student {peak['student']:.0f})"
                    if 'kd' in peak else ''
                ]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(results: dict, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(
        1, len(results), figsize=(4.5 * len(results), 4), squeeze=False)
    for ax, (pair, rows) in zip(axes[0], results.items()):
        runs = [r for r in rows
                if not r.endswith('teacher') and rows[r]['values']]
        stats = [summary(rows[r]['values']) for r in runs]
        ax.bar(
            runs, [m for m, _ in stats],
            yerr=[s for _, s in stats],
            capsize=4,
            color=['tab:gray'] + ['tab:orange'] * (len(runs) - 1))
        if 'teacher' in rows:
            ax.axhline(
                rows['teacher']['values'][0],
                ls='--',
                c='tab:blue',
                label='teacher')
            ax.legend(loc='upper left', fontsize=8)
        ax.set_ylim(bottom=0.0)
        ax.set_title(PAIRS[pair]['title'], fontsize=10)
        ax.tick_params(axis='x', rotation=30)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_results(results: dict, work: str) -> str:
    """results.md, results.json and results.png; returns the table."""
    text = table(results)
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    plot(results, osp.join(work, 'results.png'))
    return text


def seed_gains(results: dict, seeds: list) -> str:
    """Each method's gain over the baseline of the same seed."""
    head = ['pair', 'run'] + [f'seed {s}' for s in seeds]
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for pair, rows in results.items():
        base = rows['baseline']['values']
        for run, row in rows.items():
            if run == 'baseline' or run.endswith('teacher'):
                continue
            gains = [f'{v - b:+.3f}' for v, b in zip(row['values'], base)]
            lines.append('| ' + ' | '.join([PAIRS[pair]['title'], run] +
                                           gains) + ' |')
    return '\n'.join(lines)


def write_docs(results: dict, work: str, args, wall: float) -> None:
    """The full report: how it was made, the tables, the plot, the JSON."""
    import platform
    import shutil

    import torch
    out = osp.abspath(args.docs)
    stem = osp.splitext(out)[0]
    os.makedirs(osp.dirname(out), exist_ok=True)
    shutil.copyfile(osp.join(work, 'results.png'), stem + '.png')
    shutil.copyfile(osp.join(work, 'results.json'), stem + '.json')
    trained = sum(w for rows in results.values() for row in rows.values()
                  for w in row.get('wall_s', []) if w)
    gaps = []
    for pair, rows in results.items():
        teacher = rows['teacher']['values'][0]
        base = summary(rows['baseline']['values'])[0]
        gaps.append(f"| {PAIRS[pair]['title']} | {teacher:.3f} | "
                    f'{base:.3f} | {teacher - base:+.3f} |')
        if 'sftn teacher' in rows:
            sftn = rows['sftn teacher']['values'][0]
            gaps.append(f"| {PAIRS[pair]['title']}, SFTN teacher | "
                        f'{sftn:.3f} | {base:.3f} | {sftn - base:+.3f} |')
    command = ' '.join(['python tools/benchmark_methods.py'] + sys.argv[1:])
    regime = ('from scratch' if args.scratch else
              'pretrained on digit classification (tools/pretrain_digits.py)')
    if args.student_cfg_options:
        regime += ('. The students, never the teacher, trained with `' +
                   ' '.join(args.student_cfg_options) + '`')
    text = f"""# Method benchmark

Written by `{command}` on {time.strftime('%Y-%m-%d')}, on
{platform.machine()} with {os.cpu_count()} CPU cores, Python
{platform.python_version()}, torch {torch.__version__}. Backbones
{regime}. Each pair's teacher is trained once (seed 0); then, seed by seed,
the baseline student and each method's distilled student, all with
`tools/train.py` on the same schedule; the metric is the last validation.
The runs of one seed are paired: a distilled student starts from the
baseline's initialisation, data order and random stream (the distiller
draws nothing from it), so a gain is the method's, not another draw's.
Training time of the runs in this table: {trained / 60:.0f} min; wall time
of this command: {wall / 60:.0f} min (finished runs are reused).

## Students, mean ± std over seeds

{table(results)}

## Gain over the baseline of the same seed

{seed_gains(results, args.seeds)}

## Teacher and baseline student

| pair | teacher | baseline (mean) | gap |
|---|---|---|---|
{chr(10).join(gaps)}

![method benchmark]({osp.basename(stem)}.png)

Every number: [{osp.basename(stem)}.json]({osp.basename(stem)}.json).
"""
    with open(out, 'w') as f:
        f.write(text)


def main():
    args = parse_args()
    start = time.time()
    sys.path.insert(0, REPO)
    from mmkd.datasets import make_digits
    if not osp.isfile(osp.join(args.data, 'meta.json')):
        make_digits(args.data)  # an existing set is used as it is
    work = _mkdir(args.work_dir)
    methods = select_methods(args.methods)
    if args.tekap:
        tekap = []
        for name, pair, config in methods:
            out = with_tekap(
                osp.join(DEMO, config),
                osp.join(work, f'{pair}_{name}_tekap.py'))
            if out and not name.endswith('tekap'):
                tekap.append((f'{name}+tekap', pair, out))
        methods += tekap
    pairs = list(dict.fromkeys(pair for _, pair, _ in methods))

    tag = f'_{args.tag}' if args.tag else ''
    results = {}
    for pair in pairs:
        spec = PAIRS[pair]
        teacher = train(
            osp.join(DEMO, spec['teacher']), osp.join(work, pair, 'teacher'),
            pair, ['randomness.seed=0'], args)
        ckpt = max(
            glob.glob(osp.join(work, pair, 'teacher', 'iter_*.pth')),
            key=osp.getmtime)
        runs = [('baseline', osp.join(DEMO, spec['student']), [])]
        runs += [(name, path, teacher_option(path, ckpt))
                 for name, path in ((name, config if osp.isabs(config) else
                                     osp.join(DEMO, config))
                                    for name, method_pair, config in methods
                                    if method_pair == pair)]
        rows = dict(teacher=dict(
            values=[teacher['metric']], wall_s=[teacher.get('wall_s')]))
        if args.sftn and spec['sftn']:
            # SFTN: the teacher trained with student branches, then every
            # method distilled from it as well
            run_dir = osp.join(work, pair, 'sftn_teacher')
            sftn = train(
                sftn_config(
                    osp.join(DEMO, spec['sftn']),
                    osp.join(_mkdir(run_dir), 'sftn_config.py'), args),
                run_dir, pair, ['randomness.seed=0'], args)
            rows['sftn teacher'] = dict(
                values=[sftn['metric']], wall_s=[sftn.get('wall_s')])
            exported = osp.join(run_dir, 'teacher.pth')
            runs += [(f'{name}+sftn', config,
                      teacher_option(config, exported))
                     for name, config, options in runs[1:] if options]
        rows.update({name: dict(values=[]) for name, _, _ in runs})
        results[pair] = rows
        # seeds outermost: every method has a first result early on
        for seed in args.seeds:
            for name, config, options in runs:
                result = train(
                    config, osp.join(work, pair, f'{name}{tag}_seed{seed}'),
                    pair, [
                        f'randomness.seed={seed}', *options,
                        *args.student_cfg_options
                    ], args)
                rows[name]['values'].append(result['metric'])
                rows[name].setdefault('wall_s', []).append(
                    result.get('wall_s'))
                text = write_results(results, work)
        for name, config, _ in runs[1:]:
            if not args.no_overhead:
                rows[name]['overhead'] = overhead(
                    config, osp.join(work, pair, f'{name}_overhead.json'),
                    args.overhead_iters, not args.no_memory)
        text = write_results(results, work)
    print(text)
    print(f'[benchmark] results.md, results.json and results.png in {work}')
    if args.docs:
        write_docs(results, work, args, time.time() - start)
        print(f'[benchmark] report in {args.docs}')


if __name__ == '__main__':
    main()
