"""How strongly each loss of a distillation config pulls on the student.

    python tools/loss_gradients.py CONFIG [--student-checkpoint CKPT]
        [--batches 4] [--cfg-options model.teacher.checkpoint=...]

On real training batches of the config, it computes every loss term (the
student's own and each ``distill.*``) and the norm of the gradient that term
alone sends into each part of the student (its top-level modules:
``backbone``, ``neck``, ``decode_head``, ...), averaged over the batches,
and prints a Markdown table. A distillation loss whose gradient dwarfs the
task loss's in the parts they share swamps it; one whose gradient is far
smaller does little. ``--student-checkpoint`` loads the student's weights
(a plain checkpoint or a distiller's), e.g. a trained baseline's, to see the
balance late in training rather than at the start.
"""
import argparse
import collections
import copy

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

import mmkd  # noqa: F401
from mmkd.registry import HOOKS
from mmkd.utils.checkpoint import load_from_local
from mmkd.utils.quiet import init_weights_quietly


def parse_args():
    parser = argparse.ArgumentParser(
        description='Loss values and their gradient norms per student part')
    parser.add_argument('config', help='a distillation config')
    parser.add_argument('--batches', type=int, default=4)
    parser.add_argument('--student-checkpoint',
                        help='start the student from these weights')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def student_weights(path: str) -> dict:
    """The student's state dict from a plain or a distiller checkpoint."""
    state = load_from_local(path, map_location="cpu")
    state = state.get('state_dict', state)
    if any(k.startswith('student.') for k in state):
        state = {k[len('student.'):]: v for k, v in state.items()
                 if k.startswith('student.')}
    return state


def fill_constants(cfg: Config, model, batches: list) -> None:
    """Constants (ND's centroids) from the hooks that provide them."""
    from mmkd.engine import ConstantHook
    for cfg_hook in cfg.get('custom_hooks', []):
        cls = HOOKS.get(cfg_hook.get('type'))
        if isinstance(cls, type) and issubclass(cls, ConstantHook):
            hook = HOOKS.build(dict(cfg_hook))
            model.constants.update(hook.compute(model, batches))


def grad_norms(term: torch.Tensor, groups: dict) -> dict:
    """The norm of ``term``'s gradient in each group of parameters."""
    flat = [p for params in groups.values() for p in params]
    grads = torch.autograd.grad(term, flat, retain_graph=True,
                                allow_unused=True)
    norms, start = {}, 0
    for name, params in groups.items():
        part = [g for g in grads[start:start + len(params)] if g is not None]
        start += len(params)
        norms[name] = float(torch.sqrt(sum((g.float()**2).sum()
                                           for g in part))) if part else 0.
    return norms


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(args.seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    init_weights_quietly(model)
    if args.student_checkpoint:
        model.student.load_state_dict(
            student_weights(args.student_checkpoint))
    model.train()
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = iter(Runner.build_dataloader(loader_cfg, seed=args.seed))
    batches = [next(loader) for _ in range(args.batches)]
    fill_constants(cfg, model, batches)
    groups = collections.OrderedDict(
        (name, [p for p in child.parameters() if p.requires_grad])
        for name, child in model.student.named_children())
    if len(model.adapters):
        groups['adapters'] = list(model.adapters.parameters())
    groups = {k: v for k, v in groups.items() if v}
    values = collections.defaultdict(list)
    norms = collections.defaultdict(lambda: collections.defaultdict(list))
    for data in batches:
        batch = model.data_preprocessor(copy.deepcopy(data), True)
        losses = model(**batch, mode='loss')
        for key, value in losses.items():
            terms = value if isinstance(value, (list, tuple)) else [value]
            term = sum(t for t in terms if isinstance(t, torch.Tensor))
            if not isinstance(term, torch.Tensor) or not term.requires_grad:
                continue
            if 'loss' not in key and not key.startswith('distill.'):
                continue
            values[key].append(float(term.detach()))
            for group, norm in grad_norms(term, groups).items():
                norms[key][group].append(norm)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print(f'| loss (mean of {args.batches} batches) | value | ' +
          ' | '.join(f'grad norm: {g}' for g in groups) + ' |')
    print('|---|---|' + '---|' * len(groups))
    for key in values:
        cells = [f'{mean(norms[key][g]):.3g}' for g in groups]
        print(f'| {key} | {mean(values[key]):.4g} | ' + ' | '.join(cells) +
              ' |')


if __name__ == '__main__':
    main()
