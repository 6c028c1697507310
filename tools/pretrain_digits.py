"""Pretrain the digits backbones on digit classification (no download).

    python tools/pretrain_digits.py [CONFIG ...] [--out-dir DIR]
        [--iters 500] [--force]

The digits configs of configs/demo/ start their backbones from
``init_cfg=dict(type='Pretrained', checkpoint='data/digits/pretrained/...')``,
as COCO models start from ImageNet. For each config (by default every digits
teacher and student) this builds the backbone its model dict defines, with
mmdet's or mmseg's own class, puts a linear classifier on its pooled last
feature map and trains both to classify 48-pixel crops around the digits of
images drawn as the digits set draws them (``mmkd.datasets.digit_crops``),
from the train scans only (0-1399). It saves the backbone's weights under
their own keys at the path of the config's ``init_cfg``, or under
``--out-dir`` with the same file name, and prints the accuracy on crops of
the val scans. Configs that share a backbone share its file; a file that
exists is reused unless ``--force``.
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')
CONFIGS = [
    osp.join(DEMO, name) for name in (
        'faster_rcnn_r18_digits.py', 'faster_rcnn_r34_digits.py',
        'gfl_r18_digits.py', 'gfl_r34_digits.py', 'pspnet_r18_digits.py',
        'pspnet_r34_digits.py', 'segformer_mitb0_digits.py',
        'segformer_mitb2_digits.py')
]
ITERS = 500
CROP = 48
_CROPS = {}  # (split, images, seed) -> (crops, digits), shared by backbones


def pretrained_backbones(cfg) -> list:
    """``[(key, backbone_cfg, checkpoint)]`` for every backbone of
    ``cfg.model`` whose ``init_cfg`` is Pretrained; ``key`` is its dotted
    path (``model.backbone``, ``model.student.backbone``). A distiller's
    teacher is skipped: it loads its own trained checkpoint."""
    found = []

    def walk(node, key):
        if not isinstance(node, dict):
            return
        init = node.get('init_cfg')
        if key.endswith('backbone') and isinstance(init, dict) and \
                init.get('type') == 'Pretrained':
            found.append((key, node, init['checkpoint']))
        for name, child in node.items():
            if name != 'teacher':
                walk(child, f'{key}.{name}')

    walk(cfg.model, 'model')
    return found


def crops(split: str, num_images: int, seed: int) -> tuple:
    """Normalisable float crops ``(M, 3, CROP, CROP)`` and their digits."""
    key = (split, num_images, seed)
    if key not in _CROPS:
        sys.path.insert(0, REPO)
        from sklearn.datasets import load_digits

        from mmkd.datasets import digit_crops
        from mmkd.datasets.digits import TRAIN_SCANS
        digits = load_digits()
        scans = slice(0, TRAIN_SCANS) if split == 'train' else slice(
            TRAIN_SCANS, None)
        rng = np.random.default_rng([seed, 100 + (split == 'val')])
        img, target = digit_crops(rng, digits.images[scans],
                                  digits.target[scans], num_images, CROP)
        _CROPS[key] = (torch.from_numpy(img).permute(0, 3, 1, 2).float(),
                       torch.from_numpy(target))
    return _CROPS[key]


class Classifier(nn.Module):
    """A backbone, global average pooling of its last map, a linear head."""

    def __init__(self, backbone: nn.Module, channels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1].mean((2, 3)))


def build_backbone(backbone_cfg: dict,
                   scope: str,
                   undilate: bool = False) -> nn.Module:
    """The configured backbone, freshly initialised (its own default).

    ``undilate`` gives every stage after the first stride 2 and dilation 1,
    as ImageNet backbones are trained before a dilated segmentor loads them:
    the weights are the same, and the crops 6x cheaper to classify.
    """
    from mmengine.registry import MODELS, init_default_scope

    from mmkd.utils.quiet import init_weights_quietly
    init_default_scope(scope)
    backbone_cfg = copy.deepcopy(dict(backbone_cfg))
    backbone_cfg.pop('init_cfg', None)
    if undilate and 'dilations' in backbone_cfg:
        stages = backbone_cfg.get('num_stages', 4)
        backbone_cfg.update(
            strides=(1, ) + (2, ) * (stages - 1), dilations=(1, ) * stages)
    backbone = MODELS.build(backbone_cfg)
    init_weights_quietly(backbone)
    return backbone


def progress(total: int, desc: str):
    """tqdm if installed, else a bar printed every 5 %."""
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc)
    except ImportError:
        return _PrintedBar(total, desc)


class _PrintedBar:

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n = total, desc, 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n == self.total or self.n % max(1, self.total // 20) == 0:
            done = 30 * self.n // self.total
            print(f'{self.desc} [{"#" * done}{"." * (30 - done)}] '
                  f'{self.n}/{self.total}', flush=True)

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def accuracy(model: nn.Module, images: torch.Tensor, digits: torch.Tensor,
             norm: tuple) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum((model((batch - norm[0]) / norm[1]).argmax(1) == d).sum()
                   for batch, d in zip(images.split(256), digits.split(256)))
    model.train()
    return float(hits) / len(digits)


def pretrain(backbone_cfg: dict,
             scope: str,
             norm: tuple,
             out: str,
             iters: int = ITERS,
             batch_size: int = 64,
             lr: float = 0.05,
             seed: int = 0) -> float:
    """Train ``backbone_cfg`` with a linear head on digit crops, save its
    weights to ``out`` and return the val crop accuracy.

    The crops come from 3 images per iteration (about 10 digits), so the
    batches of 64 pass over them about 6 times whatever ``iters`` is.
    """
    torch.manual_seed(seed)
    train_x, train_y = crops('train', 3 * iters, seed)
    val_x, val_y = crops('val', 150, seed)
    backbone = build_backbone(backbone_cfg, scope, undilate=True)
    with torch.no_grad():
        channels = backbone(torch.zeros(1, 3, CROP, CROP))[-1].shape[1]
    model = Classifier(backbone, channels)
    optim = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    warmup = max(1, iters // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda i: min((i + 1) / warmup, 0.5 *
                             (1 + math.cos(math.pi * i / iters))))
    gen = torch.Generator().manual_seed(seed)
    bar = progress(iters, osp.basename(out))
    order = torch.randperm(len(train_y), generator=gen)
    for it in range(iters):
        start = it * batch_size % len(order)
        if start + batch_size > len(order):
            order, start = torch.randperm(len(train_y), generator=gen), 0
        index = order[start:start + batch_size]
        logits = model((train_x[index] - norm[0]) / norm[1])
        loss = F.cross_entropy(logits, train_y[index])
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        bar.update()
        if it % 10 == 0:
            bar.set_postfix_str(f'loss {loss.item():.3f}')
    bar.close()
    acc = accuracy(model, val_x, val_y, norm)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(
        dict(
            state_dict=backbone.state_dict(),
            meta=dict(
                # plain types: torch.load(weights_only=True) reads them
                backbone=json.loads(
                    json.dumps(dict(backbone_cfg, init_cfg=None))),
                iters=iters,
                batch_size=batch_size,
                crop=CROP,
                val_accuracy=acc)), out)
    return acc


def check_cached(path: str, backbone_cfg: dict, scope: str) -> None:
    """Fail if the weights in ``path`` do not fit ``backbone_cfg``."""
    ckpt = torch.load(path, map_location='cpu')
    own = build_backbone(backbone_cfg, scope).state_dict()
    saved = ckpt['state_dict']
    if {k: v.shape for k, v in saved.items()} != \
            {k: v.shape for k, v in own.items()}:
        raise RuntimeError(
            f'{path} holds another backbone than {dict(backbone_cfg)}; give '
            'the config its own checkpoint file name, or --force')
    acc = ckpt.get('meta', {}).get('val_accuracy', float('nan'))
    print(f'[pretrain] {path}: cached (val accuracy {acc:.3f})')


def scratch_options(config: str) -> list:
    """``--cfg-options`` that start ``config``'s backbones from scratch."""
    from mmengine.config import Config
    return [
        f'{key}.init_cfg=None'
        for key, _, _ in pretrained_backbones(Config.fromfile(config))
    ]


def prepare(config: str,
            out_dir: str = None,
            iters: int = ITERS,
            force: bool = False) -> list:
    """Make the pretrained backbones ``config`` needs (unless cached) and
    return the ``--cfg-options`` that point it at them (none when they are
    where the config looks)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    mean = torch.tensor(cfg.model.get('data_preprocessor', {}).get(
        'mean', [123.675, 116.28, 103.53])).view(1, 3, 1, 1)
    std = torch.tensor(cfg.model.get('data_preprocessor', {}).get(
        'std', [58.395, 57.12, 57.375])).view(1, 3, 1, 1)
    options = []
    for key, backbone_cfg, checkpoint in pretrained_backbones(cfg):
        out = osp.join(out_dir, osp.basename(checkpoint)) \
            if out_dir else checkpoint
        if out != checkpoint:
            options.append(f'{key}.init_cfg.checkpoint={out}')
        if osp.isfile(out) and not force:
            check_cached(out, backbone_cfg, cfg.default_scope)
            continue
        start = time.time()
        acc = pretrain(backbone_cfg, cfg.default_scope, (mean, std), out,
                       iters)
        print(f'[pretrain] {out}: val accuracy {acc:.3f} on digit crops '
              f'of the val scans, {time.time() - start:.0f} s')
    return options


def main():
    parser = argparse.ArgumentParser(
        description='Pretrain the digits backbones on digit classification')
    parser.add_argument('configs', nargs='*', default=CONFIGS)
    parser.add_argument(
        '--out-dir',
        default=None,
        help='where to write (default: where the configs look)')
    parser.add_argument('--iters', type=int, default=ITERS)
    parser.add_argument('--force', action='store_true', help='redo cached')
    args = parser.parse_args()
    for config in args.configs:
        prepare(config, args.out_dir, args.iters, args.force)


if __name__ == '__main__':
    main()
