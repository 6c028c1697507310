"""Overhead of a distillation config: how close to the ideal is its step?

    python tools/benchmark.py CONFIG [--img-size 320] [--batch-size 2]

On the same synthetic batches it times

- ``student``: the student's own training step, alone (a separate copy);
- ``teacher``: the teacher's no-grad forward, as far as the losses need
  (taps); the teacher's heads that pairings run on the student's samples
  (RoIs, anchors) need those samples, so they are timed inside the ``kd``
  step (``pairings``) and counted as teacher work;
- ``kd``: the distiller's training step (teacher + student + losses);
- ``critic``: structured KD's critic step, timed inside ``kd`` and counted
  as method work (a discriminator step is the method's own cost);
- ``teacher_fp32``: where the teacher does not run plain (reduced
  precision, folded BatchNorms, NHWC or a CUDA graph), its plain
  full-precision forward too, so that the step is also compared with the
  full-precision limit in the same run (``vs_fp32``:
  ``kd / (student + teacher_fp32 [+ pairings] [+ critic])``, the pairings
  at the row's precision);

interleaved iteration by iteration so that machine noise hits every phase
alike, and prints medians and the overhead ratio
``kd / (student + teacher [+ critic])``: 1.00 means distillation costs
nothing beyond running both networks. On CUDA every phase is timed between
synchronisations. ``--amp`` trains both steps with mmengine's
``AmpOptimWrapper``, as ``tools/train.py --amp`` does; the teacher runs in
its ``model.teacher.precision`` (bf16 on CUDA by default;
``--teacher-precision fp32`` for full precision), with its CUDA defaults
of ``fold_bn`` and ``channels_last`` (``--cfg-options
model.teacher.fold_bn=False`` etc.; ``model.teacher.cuda_graph=True``
replays it as CUDA graphs, see ``mmkd/utils/fast_teacher.py``).
``--time-losses`` also times, inside the step, the adapters' forward and
each distillation loss's (where a method's own work goes). Peak
memory per phase comes from CUDA's allocator on GPUs; on CPUs each phase
runs again in a fresh process and its peak resident size is read
(``--no-memory`` skips that). The teacher's checkpoint is not loaded
(timing does not depend on its values).
"""
import argparse
import copy
import json
import multiprocessing as mp
import platform
import resource
import statistics
import threading
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

import mmkd  # noqa: F401
from mmkd.engine.optimizers.distiller_constructor import AMP_KEYS
from mmkd.models.distillers.builder import build_model
from mmkd.registry import HOOKS
from mmkd.utils.fast_teacher import resolve
from mmkd.utils.precision import PRECISIONS, autocast_dtype, enable_amp

PHASES = ('student', 'teacher', 'kd')
#: parts of the kd step that are timed on their own (method work)
INNER = ('pairing', 'critic')


def parse_args():
    parser = argparse.ArgumentParser(description='Distillation overhead')
    parser.add_argument('config', help='a distillation config')
    parser.add_argument('--img-size', type=int, default=320)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument(
        '--iters', type=int, default=10, help='timed iterations per phase')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--num-gt', type=int, default=4, help='boxes per image (detection)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument(
        '--time-losses',
        action='store_true',
        help="also time the adapters' and each distillation loss's forward "
        'inside the step (one synchronisation each)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='time both training steps under AmpOptimWrapper (as '
        'tools/train.py --amp trains)')
    parser.add_argument(
        '--teacher-precision',
        choices=PRECISIONS,
        help="set model.teacher.precision (default: the config's, 'auto')")
    parser.add_argument(
        '--json', help='also write the medians, ratio and peaks here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def load_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.model.teacher.checkpoint = None
    if args.teacher_precision:
        cfg.model.teacher.precision = args.teacher_precision
    if args.amp:
        enable_amp(cfg)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return cfg


def synthetic_batch(library: str, num_classes: int, args, seed: int) -> dict:
    """One batch in the format the dataloader gives the data preprocessor."""
    gen = torch.Generator().manual_seed(seed)
    size = args.img_size
    inputs, samples = [], []
    for _ in range(args.batch_size):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        meta = dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1.0, 1.0),
            flip=False)
        if library == 'mmseg':
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(
                data=torch.randint(
                    0, num_classes, (1, size, size), generator=gen))
        else:
            from mmdet.structures import DetDataSample
            from mmengine.structures import InstanceData
            sample = DetDataSample(metainfo=meta)
            xy = torch.rand(args.num_gt, 2, generator=gen) * size * 0.6
            wh = (0.1 + torch.rand(args.num_gt, 2, generator=gen) * 0.3) * size
            boxes = torch.cat([xy, xy + wh], 1)
            sample.gt_instances = InstanceData(
                bboxes=boxes,
                labels=torch.randint(
                    0, num_classes, (args.num_gt, ), generator=gen),
                masks=box_masks(boxes, size))
            sample.ignored_instances = InstanceData(
                bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def box_masks(boxes: torch.Tensor, size: int):
    """Each box filled, as mmdet's instance masks (for mask heads)."""
    from mmdet.structures.mask import BitmapMasks
    masks = torch.zeros(len(boxes), size, size, dtype=torch.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.long().tolist()):
        mask[y1:y2, x1:x2] = 1
    return BitmapMasks(masks.numpy(), size, size)


def num_classes_of(model) -> int:
    for name in ('decode_head', 'roi_head.bbox_head', 'bbox_head'):
        module = model
        for part in name.split('.'):
            module = getattr(module, part, None)
        if module is not None and hasattr(module, 'num_classes'):
            return module.num_classes
    return 2


def build_phases(cfg: Config, args, phases=None) -> tuple:
    """``({phase: callable(batch)}, distiller)`` for the requested phases;
    by default :data:`PHASES`, with ``teacher_fp32`` before ``kd`` where the
    teacher does not run plain."""
    torch.manual_seed(0)
    distiller = MODELS.build(cfg.model).to(args.device)
    student = build_model(copy.deepcopy(cfg.model.student),
                          'model.student').to(args.device)
    student.load_state_dict(distiller.student.state_dict())
    distiller.train()
    student.train()

    # the config's own optimizers (a critic's too), as training builds them
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_kd = build_optim_wrapper(distiller, optim_cfg)
    optim_s = build_optim_wrapper(student, student_optim_cfg(optim_cfg))
    fill_constants(cfg, distiller, args)

    def teacher(batch):
        data = distiller.data_preprocessor(batch, True)
        distiller._teacher_records(data['inputs'], data['data_samples'])

    def teacher_fp32(batch):  # the plain forward: no savings at all
        data = distiller.data_preprocessor(batch, True)
        distiller._run_teacher(data['inputs'], data['data_samples'], 'fp32',
                               [], False)

    steps = dict(
        student=lambda batch: student.train_step(batch, optim_s),
        teacher=teacher,
        teacher_fp32=teacher_fp32,
        kd=lambda batch: distiller.train_step(batch, optim_kd))
    if phases is None:
        phases = PHASES if plain_teacher(cfg, args) else (
            'student', 'teacher', 'teacher_fp32', 'kd')
    return {p: steps[p] for p in phases}, distiller


def plain_teacher(cfg: Config, args) -> bool:
    """Whether the teacher's forward runs plain on ``args.device``: full
    precision, none of the savings of :mod:`mmkd.utils.fast_teacher`."""
    meta = setting(args, cfg)
    return meta['teacher_dtype'] == 'float32' and not (
        meta['teacher_fold_bn'] or meta['teacher_channels_last']
        or meta['teacher_cuda_graph'])


def student_optim_cfg(optim_cfg: dict) -> dict:
    """The optim wrapper config that trains the student alone: the whole
    config, or with mmkd's ``DistillerOptimWrapperConstructor`` its
    ``student`` entry with the top-level AMP keys (``--amp``)."""
    if 'constructor' not in optim_cfg:
        return optim_cfg
    return dict(optim_cfg['student'],
                **{k: optim_cfg[k]
                   for k in AMP_KEYS if k in optim_cfg})


def fill_constants(cfg: Config, distiller, args) -> None:
    """Ask every hook that provides constants for them, on 2 synthetic
    batches (as a short run of the hook would)."""
    from mmkd.engine import ConstantHook
    library = type(distiller.student).__module__.split('.')[0]
    for cfg_hook in cfg.get('custom_hooks', []):
        cls = HOOKS.get(cfg_hook.get('type'))
        if not (isinstance(cls, type) and issubclass(cls, ConstantHook)):
            continue
        hook = HOOKS.build(dict(cfg_hook))
        batches = [
            synthetic_batch(library, num_classes_of(distiller.student), args,
                            1000 + i) for i in range(2)
        ]
        for name, value in hook.compute(distiller, batches).items():
            distiller.constants[name] = value.to(args.device)


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def timed(obj, method: str, spent, device: str) -> None:
    """Add the synchronised time of each ``obj.method()`` call to ``spent``
    (the method runs inside the distillation step): a list, or a function
    of the call's arguments that returns the list."""
    call = getattr(obj, method)

    def wrapper(*args, **kwargs):
        sync(device)
        start = time.perf_counter()
        out = call(*args, **kwargs)
        sync(device)
        (spent(*args) if callable(spent) else spent).append(
            time.perf_counter() - start)
        return out

    setattr(obj, method, wrapper)


def time_inner(distiller, device: str, losses: bool = False) -> dict:
    """``{'pairing': [...], 'critic': [...]}``: the time spent in the
    pairings' records() (the teacher's heads run on the student's samples
    there) and in the critic's step, within each distillation step. With
    ``losses``, also the forward of the adapters (``adapters``) and of each
    distillation loss (``loss.<name>``, its inputs' gathering included):
    where a method's own work goes (each adds a synchronisation to the
    step, so it is opt-in)."""
    spent = dict(pairing=[], critic=[])
    for pairing in distiller.pairings.values():
        timed(pairing, 'records', spent['pairing'], device)
    if getattr(distiller, 'critic', None) is not None:
        timed(distiller, 'train_critic', spent['critic'], device)
    if losses:
        spent['adapters'] = []
        timed(distiller.adapters, 'forward', spent['adapters'], device)
        by_name = {name: [] for name in distiller.loss_specs}
        spent.update({f'loss.{name}': t for name, t in by_name.items()})
        timed(distiller, '_distill_loss', lambda name, *_: by_name[name],
              device)
    return spent


def time_phases(cfg: Config, args) -> tuple:
    """``(times, peaks)`` of a distillation config's phases."""
    steps, distiller = build_phases(cfg, args)
    return time_steps(
        steps, distiller.student,
        time_inner(distiller, args.device,
                   getattr(args, 'time_losses', False)), args)


def time_steps(steps: dict, student, inner: dict, args) -> tuple:
    """Run ``steps`` (``{phase: callable(batch)}``) interleaved on the same
    synthetic batches for ``student``; ``inner``: ``{name: list}`` that the
    kd step fills with the time of its timed parts (:func:`time_inner`).
    Returns ``(times, peaks)``: seconds per phase and iteration; on CUDA,
    per phase, ``(peak allocated, peak over the allocation resident before
    the step)`` in MiB."""
    library = type(student).__module__.split('.')[0]
    batches = [
        synthetic_batch(library, num_classes_of(student), args, i)
        for i in range(args.iters + args.warmup)
    ]
    times = {p: [] for p in (*steps, *INNER, *inner)}
    peaks = {}
    for i, batch in enumerate(batches):
        for spent in inner.values():
            spent.clear()
        for phase in steps:
            sync(args.device)
            if args.device.startswith('cuda'):
                torch.cuda.reset_peak_memory_stats()
                resident = torch.cuda.memory_allocated()
            start = time.perf_counter()
            steps[phase](batch)
            sync(args.device)
            if i >= args.warmup:
                times[phase].append(time.perf_counter() - start)
                if phase == 'kd':
                    for name, spent in inner.items():
                        times[name].append(sum(spent))
            if args.device.startswith('cuda') and i >= args.warmup:
                # (peak allocated, peak over what was resident before: the
                # step's own working memory, optimizer state created)
                peak = torch.cuda.max_memory_allocated()
                last = peaks.get(phase, (0, 0))
                peaks[phase] = (max(last[0], peak / 2**20),
                                max(last[1], (peak - resident) / 2**20))
    return times, peaks


def _rss_mib() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _memory_child(config: str, args, phase: str, queue) -> None:
    cfg = load_config(args)
    steps, distiller = build_phases(cfg, args, [phase])
    library = type(distiller.student).__module__.split('.')[0]
    batches = [
        synthetic_batch(library, num_classes_of(distiller.student), args, i)
        for i in range(3)
    ]
    steps[phase](batches[0])  # allocator warm-up
    idle = _rss_mib()
    peak, done = [idle], threading.Event()

    def sample() -> None:  # ru_maxrss would include the build's peak
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_mib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    for batch in batches[1:]:
        steps[phase](batch)
    done.set()
    sampler.join()
    queue.put((peak[0], peak[0] - idle))


def cpu_peaks(args) -> dict:
    """Peak RSS (MiB) of each phase, each run in its own fresh process."""
    ctx = mp.get_context('spawn')
    peaks = {}
    for phase in PHASES:
        queue = ctx.Queue()
        proc = ctx.Process(
            target=_memory_child, args=(args.config, args, phase, queue))
        proc.start()
        peaks[phase] = queue.get()
        proc.join()
    return peaks


def device_name(device: torch.device) -> str:
    """``'cuda: NVIDIA H100 80GB HBM3'``, ``'cpu: x86_64'``."""
    name = (torch.cuda.get_device_name(device) if device.type == 'cuda' else
            platform.processor() or platform.machine())
    return f'{device.type}: {name}'


def setting(args, cfg: Config) -> dict:
    """What the figures were measured on: device, precisions, batch."""
    device = torch.device(args.device)
    teacher = autocast_dtype(cfg.model.teacher.get('precision', 'auto'),
                             device)
    amp = cfg.optim_wrapper.get('type') == 'AmpOptimWrapper'
    speed = {
        k: cfg.model.teacher.get(k, v)
        for k, v in (('fold_bn', 'auto'), ('channels_last', 'auto'),
                     ('cuda_graph', False))
    }
    cuda = device.type == 'cuda'
    reduced = cuda and teacher is not None  # where 'auto' switches them on
    return dict(
        config=args.config,
        device=device_name(device),
        teacher_fold_bn=resolve(speed['fold_bn'], reduced),
        teacher_channels_last=resolve(speed['channels_last'], reduced),
        teacher_cuda_graph=bool(speed['cuda_graph']) and cuda,
        torch=torch.__version__,
        dtype=(str(cfg.optim_wrapper.get('dtype') or 'float16')
               if amp else 'float32').replace('torch.', ''),
        amp=amp,
        teacher_dtype=str(teacher or torch.float32).replace('torch.', ''),
        batch=args.batch_size,
        img_size=args.img_size,
        iters=args.iters)


def report(args, times: dict, peaks: dict, meta: dict) -> dict:
    """Print the figures; return ``{'median_s', 'ratio', 'vs_fp32'}``
    (``vs_fp32``: the step over student + the plain full-precision teacher
    of the same run [+ pairings] [+ critic]; the ratio where the teacher
    runs plain)."""
    med = {p: statistics.median(t) for p, t in times.items() if t}
    print(f"config: {args.config}  device: {meta['device']}  batch: "
          f'{args.batch_size}x3x{args.img_size}x{args.img_size}  iters: '
          f"{args.iters}  student: {meta['dtype']}{' (amp)' * meta['amp']}"
          f"  teacher: {meta['teacher_dtype']}")
    inner = [p for p in times if p not in PHASES + ('teacher_fp32', )]
    for phase in (p for p in times if p not in inner and times[p]):
        line = (f'{phase:>8}: median {med[phase] * 1000:8.1f} ms '
                f'(min {min(times[phase]) * 1000:.1f}, '
                f'max {max(times[phase]) * 1000:.1f})')
        if phase in peaks:
            peak = peaks[phase]
            line += (f'  peak {peak[0]:.0f} MiB RSS (+{peak[1]:.0f} over idle)'
                     if not args.device.startswith('cuda') else
                     f'  peak {peak[0]:.0f} MiB allocated (+{peak[1]:.0f} '
                     'over the resident)')
        print(line)
    if med.get('pairing'):
        print(f"{'':>8}  teacher heads run by pairings inside kd: "
              f"{med['pairing'] * 1000:.1f} ms (counted as teacher work)")
    if med.get('critic'):
        print(f"{'':>8}  critic step inside kd: "
              f"{med['critic'] * 1000:.1f} ms (counted as method work)")
    parts = [p for p in inner if p not in INNER and p in med]
    if parts:
        print(f"{'':>8}  forward inside kd (method work, in the step): " +
              ', '.join(f'{p} {med[p] * 1000:.1f} ms' for p in parts))
    method = med.get('pairing', 0.0) + med.get('critic', 0.0)
    ratio = med['kd'] / (med['student'] + med['teacher'] + method)
    print(
        'overhead ratio kd / (student + teacher' +
        ' + critic' * bool(med.get('critic')) + f') = {ratio:.3f}' +
        (' (teacher includes the pairings)' if med.get('pairing') else ''),
        flush=True)
    vs_fp32 = ratio
    if 'teacher_fp32' in med:
        vs_fp32 = med['kd'] / (med['student'] + med['teacher_fp32'] + method)
        print(f'against the plain fp32 teacher of this run: {vs_fp32:.3f}',
              flush=True)
    return dict(median_s=med, ratio=ratio, vs_fp32=vs_fp32)


def main():
    args = parse_args()
    cfg = load_config(args)
    meta = setting(args, cfg)
    times, peaks = time_phases(cfg, args)
    figures = report(args, times, peaks, meta)
    if not args.device.startswith('cuda') and not args.no_memory:
        print('peak memory, each phase in a fresh process:')
        peaks = cpu_peaks(args)
        report(args, times, peaks, meta)
    if args.json:
        figures.update(meta)
        # CPU: RSS over the idle process; CUDA: allocated over what was
        # resident before the step (MiB)
        figures['peak_mib'] = {
            p: v[1]
            for p, v in peaks.items()
        }
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=1)


if __name__ == '__main__':
    main()
