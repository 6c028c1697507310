"""The teacher's forward alone, in each way mmkd can run it.

    python tools/profile_teacher.py CONFIG [--img-size 800] [--batch-size 2]
        [--modes fp32 bf16-cast bf16 bf16-graph] [--json out.json]

Each mode is a setting of ``model.teacher`` (``precision``, ``fold_bn``,
``channels_last``, ``cuda_graph``: see ``mmkd/utils/fast_teacher.py``);
the forward is the distiller's, as far as the losses' taps need, on a
synthetic batch. For each it prints the median wall time of ``--iters``
forwards, each between synchronisations, and on CUDA the GPU's kernel time
and kernel count per forward (``torch.profiler``). Where the wall time is
well above the kernel time, the forward is bound by the host (kernel
launches), and fewer kernels or a CUDA graph are what helps; where they are
close, it is bound by the GPU, and reduced precision is what helps.
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.registry import MODELS

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import benchmark as bench  # noqa: E402

#: mode: model.teacher keys
MODES = {
    'fp32': dict(precision='fp32', fold_bn=False, channels_last=False),
    'fp32-fold': dict(precision='fp32', fold_bn=True, channels_last=False),
    'bf16-cast': dict(precision='bf16', fold_bn=False, channels_last=False),
    'bf16-nhwc': dict(precision='bf16', fold_bn=False, channels_last=True),
    'bf16': dict(precision='bf16', fold_bn=True, channels_last=True),
    'bf16-graph': dict(
        precision='bf16', fold_bn=True, channels_last=True, cuda_graph=True),
}


def parse_args():
    parser = argparse.ArgumentParser(description="The teacher's forward")
    parser.add_argument('config', help='a distillation config')
    parser.add_argument('--img-size', type=int, default=800)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument(
        '--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', help='also write the rows here')
    return parser.parse_args()


def kernels(forward, device: str, n: int = 5) -> tuple:
    """``(kernel ms, kernel count)`` per forward on CUDA; Nones elsewhere."""
    if not device.startswith('cuda'):
        return None, None
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            forward()
        torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type.name == 'CUDA']
    return sum(e.device_time for e in events) / 1000 / n, len(events) / n


def profile_mode(args, mode: str) -> dict:
    run = argparse.Namespace(
        config=args.config,
        img_size=args.img_size,
        batch_size=args.batch_size,
        num_gt=4,
        amp=False,
        teacher_precision=None,
        cfg_options=None)
    cfg = bench.load_config(run)
    cfg.model.teacher.update(MODES[mode])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device).train()
    library = type(model.student).__module__.split('.')[0]
    batch = bench.synthetic_batch(library, bench.num_classes_of(model.student),
                                  run, 0)
    data = model.data_preprocessor(batch, True)

    def forward():
        model._teacher_records(data['inputs'], data['data_samples'])

    for _ in range(args.warmup):
        forward()
    times = []
    for _ in range(args.iters):
        bench.sync(args.device)
        start = time.perf_counter()
        forward()
        bench.sync(args.device)
        times.append(time.perf_counter() - start)
    kernel_ms, count = kernels(forward, args.device)
    return dict(
        config=args.config,
        device=bench.device_name(torch.device(args.device)),
        batch=args.batch_size,
        img_size=args.img_size,
        mode=mode,
        teacher=MODES[mode],
        wall_ms=statistics.median(times) * 1000,
        kernel_ms=kernel_ms,
        kernels=count,
        folded=len(model.__dict__.get('_teacher_fold_pairs') or []))


def main():
    args = parse_args()
    rows = []
    for mode in args.modes:
        row = profile_mode(args, mode)
        rows.append(row)
        gpu = (f"  kernels {row['kernel_ms']:6.2f} ms  ({row['kernels']:.0f})"
               if row['kernel_ms'] is not None else '')
        print(f"{mode:>10}: wall {row['wall_ms']:7.2f} ms{gpu}  BatchNorms "
              f"folded: {row['folded']}", flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
