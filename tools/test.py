"""Test a trained student with mmdet/mmseg's own test loop.

CONFIG may be a distillation config (with a distiller checkpoint from
training, or an exported student checkpoint) or the student's own config:
either way only the student is built and evaluated; no teacher is loaded.
An SFTN config (``mmkd.SFTNTeacher``) with a checkpoint of its training
tests the teacher it trains.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import mmkd  # noqa: F401
from mmkd.utils import (export_student, load_checkpoint_file,
                        setup_cpu_distributed, student_config,
                        student_state_dict)
from mmkd.utils.fit import check_fit


def parse_args():
    parser = argparse.ArgumentParser(description='Test a distilled student')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--strict',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='stop when a checkpoint key is missing, unexpected or of '
        'another shape (default); --no-strict tests with what fits')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument(
        '--out',
        help='dump predictions to this pickle file for offline '
        'evaluation')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    checkpoint = args.checkpoint
    ckpt = load_checkpoint_file(checkpoint)
    state = ckpt.get('state_dict', ckpt)
    if any(k.startswith('student.') for k in state):  # a distiller's
        state = student_state_dict(state)
        os.makedirs(cfg.work_dir, exist_ok=True)
        checkpoint = export_student(
            ckpt, osp.join(cfg.work_dir, 'student_for_test.pth'))
    sftn = str(cfg.model.get('type', '')).endswith('SFTNTeacher')
    if 'student' in cfg.model and not sftn:  # a distiller: test the student
        cfg = student_config(cfg)
    cfg.load_from = checkpoint

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl or .pickle file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpResults', out_file_path=args.out))

    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    check_fit(model, {
        k[7:] if k.startswith('module.') else k: v
        for k, v in state.items()
    }, args.checkpoint, f'the model of {args.config}', args.strict,
              'pass --no-strict to test with what fits')
    runner.test()
    if torch.distributed.is_initialized():
        # gloo's threads torn down at exit with the group alive can abort a
        # rank ('terminate called without an active exception')
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
