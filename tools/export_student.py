"""Write a student-only checkpoint and config from a distiller checkpoint.

    python tools/export_student.py CONFIG CHECKPOINT OUT.pth

OUT.pth and OUT_config.py then load with plain ``mmdet.apis.init_detector``
or ``mmseg.apis.init_model``, without mmkd.
"""
import argparse

from mmengine.config import Config

import mmkd  # noqa: F401
from mmkd.utils import export_student


def main():
    parser = argparse.ArgumentParser(description='Export the student')
    parser.add_argument('config', help='the distillation config')
    parser.add_argument('checkpoint', help='a distiller checkpoint')
    parser.add_argument('out', help='the student checkpoint to write (.pth)')
    args = parser.parse_args()
    out = export_student(args.checkpoint, args.out,
                         Config.fromfile(args.config))
    print(f'student written to {out}')


if __name__ == '__main__':
    main()
