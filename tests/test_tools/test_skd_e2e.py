"""Structured KD through the real Runner: two optimizers, IoU validation,
exact resume, and 2-process DDP on CPU with the critic synced."""
import copy
import os.path as osp

import torch
from mmengine.runner import Runner

from ddp_fixtures import DUMP_HOOK, free_port
from skd_fixtures import skd_config, skd_files  # noqa: F401
from tiny_setups import REPO, run_script


def train(cfg, work_dir, max_iters=4):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_trains_validates_and_checkpoints_both_optimizers(
        skd_files, tmp_path):  # noqa: F811
    runner = train(skd_config(skd_files), tmp_path / 'skd')
    hub = runner.message_hub
    assert 'mIoU' in hub.log_scalars or 'val/mIoU' in hub.log_scalars
    for key in ('distill.pixel', 'distill.pair', 'distill.holistic',
                'critic.loss'):
        assert torch.isfinite(
            torch.tensor(hub.get_scalar(f'train/{key}').current())), key
    ckpt = torch.load(osp.join(runner.work_dir, 'iter_4.pth'))
    assert set(ckpt['optimizer']) == {'student', 'critic'}
    # the critic's own poly schedule reaches 0; the student keeps its lr
    lr = {k: v['param_groups'][0]['lr'] for k, v in ckpt['optimizer'].items()}
    assert lr == dict(student=0.01, critic=0.0)
    half = torch.load(osp.join(runner.work_dir, 'iter_2.pth'))['optimizer']
    assert 0 < half['critic']['param_groups'][0]['lr'] < 4e-4
    assert any(k.startswith('critic.') for k in ckpt['state_dict'])
    before = torch.load(osp.join(runner.work_dir, 'iter_2.pth'))
    for key in ('critic.score.weight', 'student.backbone.stem.0.weight'):
        assert not torch.equal(before['state_dict'][key],
                               ckpt['state_dict'][key]), key


def test_resume_equals_uninterrupted_run(skd_files, tmp_path):  # noqa: F811
    cfg = skd_config(skd_files)
    cfg.train_cfg.val_interval = 100
    straight = train(cfg, tmp_path / 'straight', max_iters=4)
    train(cfg, tmp_path / 'resumed', max_iters=2)
    cfg.resume = True
    resumed = train(cfg, tmp_path / 'resumed', max_iters=4)
    assert resumed.iter == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert any(k.startswith('critic.') for k in a)
    for key in a:
        torch.testing.assert_close(
            a[key], b[key], rtol=0, atol=0, msg=f'{key} differs on resume')
    states = [
        r.optim_wrapper['critic'].state_dict() for r in (straight, resumed)
    ]
    for s_a, s_b in zip(states[0]['state'].values(),
                        states[1]['state'].values()):
        torch.testing.assert_close(s_a['momentum_buffer'],
                                   s_b['momentum_buffer'])


def test_ddp_on_two_cpu_processes(skd_files, tmp_path):  # noqa: F811
    """tools/dist_train.sh, 2 processes: the critic is synced too (each
    child wrapped on its own: ``student.module``, ``critic.module``)."""
    (tmp_path / 'rank_dump.py').write_text(DUMP_HOOK)
    cfg = skd_config(skd_files)
    # the wrapper every mmkd config names; it wraps student and critic apart
    cfg.model_wrapper_cfg = dict(type='mmkd.DistillerDataParallel')
    cfg.custom_imports = dict(imports=['mmkd', 'rank_dump'])
    cfg.custom_hooks = [dict(type='DumpRankWeights')]
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
    assert 'critic.loss' in proc.stdout + proc.stderr
    assert (work_dir / 'wrapper0.txt').read_text() == \
        'MMSeparateDistributedDataParallel'
    ranks = [torch.load(work_dir / f'rank{r}.pth') for r in (0, 1)]
    inits = [torch.load(work_dir / f'init{r}.pth') for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    assert any(k.startswith('critic.') for k in ranks[0])
    for key in ranks[0]:
        # each rank saw its own half of the data; the updates were synced
        torch.testing.assert_close(
            ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    for key in ('student.module.backbone.stem.0.weight',
                'critic.module.score.weight'):
        assert not torch.equal(inits[0][key], ranks[0][key]), key
