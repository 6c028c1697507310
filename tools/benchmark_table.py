"""The overhead table: every config, with and without the reduced-precision
teacher, with and without ``--amp``, in one process.

    python tools/benchmark_table.py CONFIG [CONFIG ...] [--mmdet-ld] \\
        [--variants fp32 teacher amp amp+teacher] [--markdown docs/gpu.md]

Each (config, variant) is timed as ``tools/benchmark.py`` times it (same
phases, synthetic batches and ratio); the variants are

- ``fp32``: student and teacher in full precision, the teacher's forward
  plain (no folded BatchNorms, no NHWC);
- ``teacher``: the teacher as it runs by default on CUDA: bf16
  (``model.teacher.precision='auto'``), BatchNorms folded, NHWC
  (``fold_bn`` and ``channels_last``, see ``mmkd/utils/fast_teacher.py``);
- ``teacher-cast``: bf16 with its weights cast once, nothing else;
- ``teacher+graph``: ``teacher`` with ``cuda_graph=True``;
- ``amp``: both steps under ``AmpOptimWrapper``, the teacher plain fp32;
- ``amp+teacher``, ``amp+teacher+graph``: both.

The first four of ``fp32 teacher amp amp+teacher`` run without
``--variants``.

Besides ``kd / (student + teacher)`` the table gives the step against the
full-precision limit: ``kd / (student + teacher at fp32)``, the same AMP
setting, so a reduced-precision teacher shows as a ratio below 1. Rows whose
teacher has savings time the plain fp32 forward themselves, interleaved with
their other phases, and take the limit from there (the ``teacher fp32``
column); other rows from their config's ``fp32``/``amp`` row.
``--mmdet-ld`` adds mmdet's own LD (``ld_r18-gflv1-r101_fpn_1x_coco``:
``KnowledgeDistillationSingleStageDetector``) as the anchor, timed the same
way (its teacher runs in the student's precision: it has no other).
Images are ``--img-size`` (default 800) for detectors, ``--seg-img-size``
(default 512) for segmentors. On CUDA, each phase's working memory (its
peak over what was allocated before it) comes with the times.
"""
import argparse
import copy
import gc
import importlib.util
import json
import os.path as osp
import traceback

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

#: the teacher's forward with every saving off, as before the savings
PLAIN = dict(fold_bn=False, channels_last=False, cuda_graph=False)
#: its defaults on CUDA ('auto': BatchNorms folded, NHWC in bf16)
DEFAULT = dict(fold_bn='auto', channels_last='auto', cuda_graph=False)
VARIANTS = {
    'fp32': dict(amp=False, teacher_precision='fp32', teacher=PLAIN),
    'teacher-cast': dict(amp=False, teacher_precision='auto', teacher=PLAIN),
    'teacher': dict(amp=False, teacher_precision='auto', teacher=DEFAULT),
    'teacher+graph': dict(
        amp=False,
        teacher_precision='auto',
        teacher=dict(DEFAULT, cuda_graph=True)),
    'amp': dict(amp=True, teacher_precision='fp32', teacher=PLAIN),
    'amp+teacher': dict(amp=True, teacher_precision='auto', teacher=DEFAULT),
    'amp+teacher+graph': dict(
        amp=True,
        teacher_precision='auto',
        teacher=dict(DEFAULT, cuda_graph=True)),
}
#: what the table measures without --variants
DEFAULT_VARIANTS = ('fp32', 'teacher', 'amp', 'amp+teacher')
MMDET_LD = 'mmdet::ld/ld_r18-gflv1-r101_fpn_1x_coco.py'


def load_benchmark():
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark.py')
    spec = importlib.util.spec_from_file_location('mmkd_benchmark', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()


def parse_args():
    parser = argparse.ArgumentParser(description='Distillation overhead '
                                     'table')
    parser.add_argument('configs', nargs='*', help='distillation configs')
    parser.add_argument(
        '--variants',
        nargs='+',
        default=list(DEFAULT_VARIANTS),
        choices=VARIANTS)
    parser.add_argument(
        '--mmdet-ld', action='store_true', help="add mmdet's own LD")
    parser.add_argument('--img-size', type=int, default=800)
    parser.add_argument('--seg-img-size', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--num-gt', type=int, default=4)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--time-losses',
        action='store_true',
        help="also time the adapters' and each loss's forward in the step "
        '(in --json)')
    parser.add_argument('--json', help='write every row here')
    parser.add_argument('--markdown', help='write the table here')
    return parser.parse_args()


def is_segmentor(cfg: Config) -> bool:
    pre = cfg.get('data_preprocessor') or cfg.model.get(
        'student', cfg.model).get('data_preprocessor') or {}
    return 'Seg' in str(pre.get('type', ''))


def run_args(args, config: str, variant: str, segmentor: bool):
    """The ``tools/benchmark.py`` arguments of one row."""
    variant = dict(VARIANTS[variant])
    teacher = variant.pop('teacher')
    return argparse.Namespace(
        config=config,
        img_size=args.seg_img_size if segmentor else args.img_size,
        batch_size=args.batch_size,
        iters=args.iters,
        warmup=args.warmup,
        num_gt=args.num_gt,
        device=args.device,
        no_memory=True,
        time_losses=getattr(args, 'time_losses', False),
        json=None,
        cfg_options={f'model.teacher.{k}': v
                     for k, v in teacher.items()},
        **variant)


def mmkd_row(args, config: str, variant: str) -> dict:
    segmentor = is_segmentor(Config.fromfile(config))
    run = run_args(args, config, variant, segmentor)
    cfg = bench.load_config(run)
    meta = bench.setting(run, cfg)
    times, peaks = bench.time_phases(cfg, run)
    return dict(meta, **bench.report(run, times, peaks, meta), peak_mib=peaks)


def mmdet_ld_row(args, variant: str) -> dict:
    """mmdet's LD recipe, its student alone and its teacher's forward."""
    import mmdet

    def packaged(path: str) -> str:  # mmdet's own copy of its configs
        return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', path)

    init_default_scope('mmdet')
    cfg = Config.fromfile(packaged(MMDET_LD.split('::')[1]))
    model_cfg = copy.deepcopy(cfg.model)
    # its teacher_config is relative to mmdet's repository
    model_cfg.teacher_config = packaged(model_cfg.teacher_config.split(
        'configs/', 1)[1])
    model_cfg.teacher_ckpt = None
    student_cfg = copy.deepcopy(model_cfg)
    student_cfg.type = 'GFL'
    for key in ('teacher_config', 'teacher_ckpt', 'eval_teacher'):
        student_cfg.pop(key, None)
    student_cfg.bbox_head.type = 'GFLHead'
    student_cfg.bbox_head.pop('loss_ld')
    torch.manual_seed(0)
    kd = MODELS.build(model_cfg)
    kd.to(args.device)  # mmdet's override moves the teacher, returns None
    kd.train()
    student = MODELS.build(student_cfg).to(args.device).train()
    student.load_state_dict(kd.state_dict(), strict=False)
    run = run_args(args, MMDET_LD, variant, False)
    optim = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    if run.amp:
        optim.update(type='AmpOptimWrapper', loss_scale='dynamic')
    optim_kd = build_optim_wrapper(kd, copy.deepcopy(optim))
    optim_s = build_optim_wrapper(student, copy.deepcopy(optim))

    @torch.no_grad()
    def teacher(batch):  # what LD's loss() runs of its teacher
        data = kd.data_preprocessor(batch, True)
        with optim_kd.optim_context(kd):
            kd.teacher_model.bbox_head(
                kd.teacher_model.extract_feat(data['inputs']))

    steps = dict(
        student=lambda batch: student.train_step(batch, optim_s),
        teacher=teacher,
        kd=lambda batch: kd.train_step(batch, optim_kd))
    times, peaks = bench.time_steps(steps, student, {}, run)
    meta = dict(
        config=MMDET_LD,
        device=bench.device_name(torch.device(args.device)),
        torch=torch.__version__,
        dtype='float16' if run.amp else 'float32',
        amp=run.amp,
        teacher_dtype='float16' if run.amp else 'float32',
        batch=run.batch_size,
        img_size=run.img_size,
        iters=run.iters)
    return dict(meta, **bench.report(run, times, peaks, meta), peak_mib=peaks)


def limit_ratios(rows: list) -> None:
    """Each row's kd step over the full-precision limit, student + teacher
    at fp32 (+ critic), at the row's AMP setting (``vs_fp32_limit``).
    Where the row's teacher does not run plain, that limit was timed in the
    row itself (``tools/benchmark.py`` times the plain fp32 forward
    interleaved with the others: ``vs_fp32``), free of the noise between
    separately built rows; otherwise it is taken from the row with the same
    config and AMP setting whose teacher runs in fp32."""
    limits = {}
    for row in rows:
        if row['variant'] in ('fp32', 'amp'):
            med = row['median_s']
            limits[row['config'], row['amp']] = (
                med['student'] + med['teacher'] + med.get('pairing', 0) +
                med.get('critic', 0))
    for row in rows:
        if 'teacher_fp32' in row['median_s']:
            row['vs_fp32_limit'] = row['vs_fp32']
            continue
        limit = limits.get((row['config'], row['amp']))
        row['vs_fp32_limit'] = (
            row['median_s']['kd'] / limit if limit else None)


def markdown(rows: list) -> str:
    head = ('| config | variant | student | teacher (+ pairings) | '
            'teacher fp32 | critic | distillation step | ratio | vs fp32 '
            'teacher | working memory: distillation (student + teacher) |\n'
            '|---|---|---|---|---|---|---|---|---|---|\n')
    lines = []
    for row in rows:
        med = {k: v * 1000 for k, v in row['median_s'].items()}
        pairing = (f" + {med['pairing']:.1f}" if med.get('pairing') else '')
        critic = f"{med['critic']:.1f} ms" if med.get('critic') else ''
        plain = (f"{med['teacher_fp32']:.1f} ms"
                 if 'teacher_fp32' in med else '')
        limit = (f"{row['vs_fp32_limit']:.3f}"
                 if row.get('vs_fp32_limit') else '')
        name = osp.splitext(osp.basename(row['config']))[0]
        peaks = {k: v[1] for k, v in row['peak_mib'].items()}
        memory = (f"{peaks['kd']:.0f} ({peaks['student']:.0f} + "
                  f"{peaks['teacher']:.0f}) MiB" if peaks else '')
        lines.append(
            f"| {name} | {row['variant']} (student {row['dtype']}, teacher "
            f"{row['teacher_dtype']}) | {med['student']:.1f} ms | "
            f"{med['teacher']:.1f}{pairing} ms | {plain} | {critic} | "
            f"{med['kd']:.1f} ms | {row['ratio']:.3f} | {limit} | {memory} "
            '|')
    first = rows[0]
    return (f"Device: {first['device']}, torch {first['torch']}; batch "
            f"{first['batch']}, median of {first['iters']} iterations.\n\n" +
            head + '\n'.join(lines) + '\n')


def main():
    args = parse_args()
    rows = []
    jobs = [(c, v) for c in args.configs for v in args.variants]
    if args.mmdet_ld:
        jobs += [(MMDET_LD, v) for v in args.variants
                 if v in ('fp32', 'amp')]
    for config, variant in jobs:
        try:
            row = (mmdet_ld_row(args, variant) if config == MMDET_LD else
                   mmkd_row(args, config, variant))
        except Exception as err:  # one broken row must not lose the rest
            traceback.print_exc()
            print(f'FAILED {config} {variant}: {type(err).__name__}: {err}',
                  flush=True)
            continue
        finally:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        row['variant'] = variant
        rows.append(row)
        if args.json:  # after every row: a killed run keeps what it did
            with open(args.json, 'w') as f:
                json.dump(rows, f, indent=1)
    limit_ratios(rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    if rows:
        table = markdown(rows)
        print(table)
        if args.markdown:
            with open(args.markdown, 'w') as f:
                f.write(table)
    print(f'{len(rows)} of {len(jobs)} rows measured')


if __name__ == '__main__':
    main()
