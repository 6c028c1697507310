"""End to end through the real mmengine Runner: train, validate, export."""
import copy
import json
import os.path as osp

import torch
from mmengine.runner import Runner

from tiny_setups import REPO, check_export, distill_config, run_script


def train(cfg, work_dir, max_iters=4):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.custom_hooks = cfg.custom_hooks + [dict(type='mmkd.StudentExportHook')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_detector_trains_validates_and_exports(det_files, tmp_path):
    cfg = distill_config(det_files)
    runner = train(cfg, tmp_path / 'det')
    before = torch.load(
        osp.join(runner.work_dir, 'iter_2.pth'),
        weights_only=False)['state_dict']
    after = runner.model.state_dict()
    assert not torch.equal(before['student.backbone.conv1.weight'],
                           after['student.backbone.conv1.weight'])
    assert not torch.equal(before['adapters.hint.convs.0.weight'],
                           after['adapters.hint.convs.0.weight'])
    hub = runner.message_hub
    assert 'coco/bbox_mAP' in hub.log_scalars or \
        'val/coco/bbox_mAP' in hub.log_scalars
    assert hub.get_scalar('train/distill.hint').current() > 0
    image = osp.join(det_files['root'], 'data', 'images', 'val_9.png')
    pred = check_export(runner, det_files, image, 'mmdet.apis',
                        'init_detector', 'inference_detector',
                        'result.pred_instances.bboxes')
    assert pred.shape[1] == 4
    ckpt = torch.load(osp.join(runner.work_dir, 'student.pth'))
    assert not any(
        k.startswith(('adapters', 'student.')) for k in ckpt['state_dict'])
    assert ckpt['meta']['dataset_meta']['classes'] == \
        ('square', 'bar', 'blob')


def test_segmentor_trains_validates_and_exports(seg_files, tmp_path):
    cfg = distill_config(seg_files, tap='decode_head.bottleneck')
    runner = train(cfg, tmp_path / 'seg')
    assert 'mIoU' in runner.message_hub.log_scalars or \
        'val/mIoU' in runner.message_hub.log_scalars
    assert runner.message_hub.get_scalar('train/distill.hint').current() > 0
    image = osp.join(seg_files['root'], 'data', 'img_dir', 'val', '0.png')
    pred = check_export(runner, seg_files, image, 'mmseg.apis', 'init_model',
                        'inference_model', 'result.pred_sem_seg.data')
    assert pred.shape[-2:] == (64, 64)


def test_resume_equals_uninterrupted_run(det_files, tmp_path):
    cfg = distill_config(det_files)
    cfg.train_cfg.val_interval = 100
    straight = train(cfg, tmp_path / 'straight', max_iters=4)
    train(cfg, tmp_path / 'resumed', max_iters=2)
    cfg.resume = True
    resumed = train(cfg, tmp_path / 'resumed', max_iters=4)
    assert resumed.iter == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(
            a[key], b[key], rtol=0, atol=0, msg=f'{key} differs after resume')


def test_readme_recipe_with_tools(det_files, tmp_path):
    """The README's 'add distillation to a config you already have', as
    written, trained with tools/train.py, tested with tools/test.py."""
    with open(osp.join(REPO, 'README.md')) as f:
        readme = f.read()
    start = readme.index('# my_project/faster_rcnn_r101_to_r50_hint.py')
    recipe = readme[start:readme.index('```', start)]
    recipe = recipe.replace("'work_dirs/faster_rcnn_r101/epoch_12.pth'",
                            repr(det_files['ckpt']))
    project = tmp_path / 'my_project'
    project.mkdir()
    (project / 'faster_rcnn_r50.py').write_text(
        open(det_files['student']).read())
    (project / 'faster_rcnn_r101.py').write_text(
        open(det_files['teacher']).read())
    config = project / 'faster_rcnn_r101_to_r50_hint.py'
    config.write_text(recipe)
    work_dir = tmp_path / 'work'
    run_script(
        osp.join(REPO, 'tools', 'train.py'),
        str(config),
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        cwd=str(tmp_path))
    assert (work_dir / 'student.pth').exists()
    logs = list(work_dir.glob('*/vis_data/scalars.json'))
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert any('distill.hint' in r for r in records)
    proc = run_script(
        osp.join(REPO, 'tools', 'test.py'),
        str(config),
        str(work_dir / 'iter_2.pth'),
        '--work-dir',
        str(tmp_path / 'test'),
        cwd=str(tmp_path))
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr
    out = tmp_path / 'exported.pth'
    run_script(
        osp.join(REPO, 'tools', 'export_student.py'),
        str(config),
        str(work_dir / 'iter_2.pth'),
        str(out),
        cwd=str(tmp_path))
    exported = torch.load(out)['state_dict']
    saved = torch.load(
        work_dir / 'iter_2.pth', weights_only=False)['state_dict']
    assert exported.keys() == {
        k[8:]
        for k in saved if k.startswith('student.')
    }
    assert (tmp_path / 'exported_config.py').exists()
