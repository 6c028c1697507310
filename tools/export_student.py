"""Write a student-only checkpoint and config from a distiller checkpoint.

    python tools/export_student.py CONFIG CHECKPOINT OUT.pth

OUT.pth and OUT_config.py then load with plain ``mmdet.apis.init_detector``
or ``mmseg.apis.init_model``, without mmkd. The student is built from
CONFIG first: weights that do not fit it (another architecture's, or a
teacher's) stop the export before anything is written.
"""
import argparse

from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from mmkd.models.distillers.builder import build_model
from mmkd.utils import export_student, student_config


def main():
    parser = argparse.ArgumentParser(description='Export the student')
    parser.add_argument('config', help='the distillation config')
    parser.add_argument('checkpoint', help='a distiller checkpoint')
    parser.add_argument('out', help='the student checkpoint to write (.pth)')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    student = build_model(student_config(cfg).model, 'model.student')
    out = export_student(args.checkpoint, args.out, cfg, model=student)
    print(f'student written to {out}')


if __name__ == '__main__':
    main()
