"""Draw a distiller's tapped teacher and student features for one image.

    python tools/feature_pictures.py CONFIG IMAGE --checkpoint CKPT \
        --out OUT.png [--loss NAME] [--cfg-options KEY=VALUE ...]

A row per tapped level shows the per-location L2 norm over channels of the
teacher's, the student's and the adapted student's features; the last panel
shows the distribution of those norms (teacher vs student, ND's
observation). Without --checkpoint the student and adapters are as built.
"""
import argparse
import os.path as osp

from mmcv.transforms import Compose
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

import mmkd  # noqa: F401
from mmkd.utils import load_checkpoint_file
from mmkd.visualization import (default_loss, draw_feature_pictures,
                                record_features)


def parse_args():
    parser = argparse.ArgumentParser(description='Draw feature pictures')
    parser.add_argument('config', help='the distillation config')
    parser.add_argument('image', help='the image to run both models on')
    parser.add_argument('--checkpoint', help='a distiller checkpoint')
    parser.add_argument('--out', default='features.png', help='the PNG')
    parser.add_argument(
        '--loss',
        help='the loss entry whose taps to draw '
        '(default: the first that taps modules)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    return parser.parse_args()


def load_image(cfg: Config, image: str) -> dict:
    """The test pipeline's packed sample, without annotation loading."""
    dataset = cfg.test_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset  # dataset wrappers
    pipeline = Compose(
        [t for t in dataset.pipeline if 'Annotations' not in str(t['type'])])
    return pipeline(dict(img_path=image, img_id=0))


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    distiller = MODELS.build(cfg.model)
    if args.checkpoint:
        ckpt = load_checkpoint_file(args.checkpoint)
        state = ckpt.get('state_dict', ckpt)
        # a distiller's checkpoint, or an exported student's
        target = (
            distiller if any(k.startswith('student.')
                             for k in state) else distiller.student)
        unexpected = target.load_state_dict(
            state, strict=False).unexpected_keys
        print(f'{len(state) - len(unexpected)} tensors loaded from '
              f'{args.checkpoint}')
    sample = load_image(cfg, args.image)
    data = distiller.data_preprocessor(
        dict(inputs=[sample['inputs']], data_samples=[sample['data_samples']]),
        False)
    loss = args.loss or default_loss(distiller)
    features = record_features(distiller, data['inputs'], data['data_samples'],
                               loss)
    title = f'{osp.splitext(osp.basename(args.config))[0]}: loss {loss!r}'
    print(f'written {draw_feature_pictures(features, args.out, title)}')


if __name__ == '__main__':
    main()
