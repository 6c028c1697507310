"""tools/dist_train.sh with 2 processes on CPU (gloo)."""
import os.path as osp

import torch

from ddp_fixtures import DUMP_HOOK, free_port
from tiny_setups import REPO, distill_config, run_script


def dist_train(cfg, tmp_path):
    """Train ``cfg`` for 2 iterations with tools/dist_train.sh on 2 CPU
    processes; each rank dumps its weights before and after."""
    (tmp_path / 'rank_dump.py').write_text(DUMP_HOOK)
    cfg.custom_imports = dict(imports=['mmkd', 'rank_dump'])
    cfg.custom_hooks = [dict(type='DumpRankWeights')]
    # the wrapper every mmkd config names
    cfg.model_wrapper_cfg = dict(type='mmkd.DistillerDataParallel')
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    config = str(tmp_path / 'dist.py')
    cfg.dump(config)
    work_dir = tmp_path / 'work'
    proc = run_script(
        'bash',
        osp.join(REPO, 'tools', 'dist_train.sh'),
        config,
        '2',
        '--work-dir',
        str(work_dir),
        env=dict(PYTHONPATH=f'{REPO}:{tmp_path}', PORT=str(free_port())))
    ranks = [torch.load(work_dir / f'rank{r}.pth') for r in (0, 1)]
    inits = [torch.load(work_dir / f'init{r}.pth') for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        # DDP synced the start and every update: the ranks never diverge
        torch.testing.assert_close(
            ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    return proc, config, work_dir, ranks, inits


def test_dist_train_two_cpu_processes(det_files, tmp_path):
    proc, config, work_dir, ranks, inits = dist_train(
        distill_config(det_files), tmp_path)
    assert 'distill.hint' in proc.stdout + proc.stderr
    # an MMDistributedDataParallel: one wrapper around the whole distiller
    assert (work_dir / 'wrapper0.txt').read_text() == 'DistillerDataParallel'
    assert any(k.startswith('adapters.hint') for k in ranks[0])
    # and they trained (each rank saw its own half of the data)
    for key in ('student.backbone.conv1.weight',
                'adapters.hint.convs.0.weight'):
        assert not torch.equal(inits[0][key], ranks[0][key])
    # and tools/dist_test.sh evaluates the student on both ranks
    proc = run_script('bash', osp.join(REPO, 'tools', 'dist_test.sh'),
                      config, str(work_dir / 'iter_2.pth'), '2',
                      '--work-dir', str(tmp_path / 'test'),
                      env=dict(PYTHONPATH=f'{REPO}:{tmp_path}',
                               PORT=str(free_port())))
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def test_netaug_around_a_distiller_under_ddp(det_files, tmp_path):
    cfg = distill_config(det_files)
    cfg.model = dict(type='mmkd.NetAug', model=cfg.model,
                     width_keys=['backbone.base_channels', 'neck.in_channels'],
                     width_mults=[1.5, 2.0])
    proc, _, _, ranks, inits = dist_train(cfg, tmp_path)
    assert 'aug.loss_cls' in proc.stdout + proc.stderr
    assert 'distill.hint' in proc.stdout + proc.stderr
    for key in ('model.student.backbone.conv1.weight',
                'aug_model.backbone.conv1.weight',
                'aug_model.neck.lateral_convs.0.conv.weight'):
        assert not torch.equal(inits[0][key], ranks[0][key]), key
