"""Write the teacher of an SFTN checkpoint, without its student branches.

    python tools/export_sftn_teacher.py CONFIG CHECKPOINT OUT.pth

CONFIG is the SFTN training config (``model.type='mmkd.SFTNTeacher'``),
CHECKPOINT any checkpoint it saved (``iter_N.pth``). OUT.pth and
OUT_config.py then load with plain ``mmseg.apis.init_model`` (mmdet's
``init_detector`` for a detector), without mmkd,
e.g. as the teacher of a distillation. The teacher is built from CONFIG
first: weights that do not fit it stop the export before anything is
written.
"""
import argparse

from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from mmkd.models.distillers.builder import build_model
from mmkd.models.sftn import export_sftn_teacher, sftn_teacher_config


def main():
    parser = argparse.ArgumentParser(description='Export an SFTN teacher')
    parser.add_argument('config', help='the SFTN config')
    parser.add_argument('checkpoint', help='a checkpoint of its training')
    parser.add_argument('out', help='the teacher checkpoint to write (.pth)')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    teacher = build_model(sftn_teacher_config(cfg).model, 'model.teacher')
    out = export_sftn_teacher(args.checkpoint, args.out, cfg, model=teacher)
    print(f'teacher written to {out}')


if __name__ == '__main__':
    main()
