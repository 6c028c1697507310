import pytest
import torch

from mmkd.engine import TeacherCentroidHook


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_iters=0 must be >= 1'):
        TeacherCentroidHook(num_iters=0)
    with pytest.raises(
            FileNotFoundError,
            match=r"TeacherCentroidHook.file: no file at 'x.pth'"):
        TeacherCentroidHook(file='x.pth')


def test_centroids_are_class_means(det_files, tmp_path):
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    from mmkd.engine.hooks.teacher_centroids import class_means
    from tiny_setups import roi_config
    cfg = roi_config(det_files)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    batch = next(iter(loader))
    # by hand, on the same batch (the student samples RoIs at random)
    torch.manual_seed(0)
    centers = class_means(model, [batch], 'roi.emb', 'roi.labels', 4)
    torch.manual_seed(0)
    data = model.data_preprocessor(batch, True)
    model.student.eval()
    with torch.no_grad():
        paired = model.collect(data['inputs'], data['data_samples'])[3]
    model.student.train()
    emb, labels = paired['roi.emb'][1], paired['roi.labels']
    for k in range(4):
        if (labels == k).any():
            torch.testing.assert_close(centers[k], emb[labels == k].mean(0))
        else:
            assert (centers[k] == 0).all()


def running_config(det_files, work_dir, max_iters):
    from tiny_setups import roi_config
    cfg = roi_config(det_files)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = 100
    cfg.custom_hooks = [
        dict(type='mmkd.ExactResumeHook'),
        dict(type='mmkd.TeacherCentroidHook', num_iters=1, running=True)
    ]
    return cfg


def test_running_centroids_are_the_means_of_every_step(det_files, tmp_path):
    """As the official KD++ code: the class means of the teacher's
    embeddings over the proposals of all training steps (plus the initial
    batches), background included."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(running_config(det_files, tmp_path, 3))
    model = runner.model
    seen = []
    model.distill_losses['nd'].register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(
            (args[1].detach().clone(), kwargs['labels'].clone())),
        with_kwargs=True)
    runner.train()
    hook = next(h for h in runner.hooks
                if isinstance(h, TeacherCentroidHook))
    initial = torch.load(tmp_path / 'roi_centers.pth')
    counts = hook._initial_counts.clone()
    sums = initial.double() * counts[:, None]
    assert len(seen) == 3 and counts.sum() > 0
    for emb, labels in seen:
        for k in range(4):
            sums[k] += emb[labels == k].double().sum(0)
            counts[k] += (labels == k).sum()
    expected = (sums / counts.clamp(min=1)[:, None]).float()
    expected = torch.where(counts[:, None] > 0, expected, initial)
    torch.testing.assert_close(model.constants['roi_centers'], expected)
    assert not torch.allclose(expected, initial)


def test_running_centroids_resume_where_they_stopped(det_files, tmp_path):
    """The running sums travel in the checkpoint: a resumed run starts from
    the centroids the interrupted run had reached, not the initial ones."""
    from mmengine.runner import Runner
    first = Runner.from_cfg(running_config(det_files, tmp_path, 2))
    first.train()
    reached = first.model.constants['roi_centers'].clone()
    hook = next(h for h in first.hooks if isinstance(h, TeacherCentroidHook))
    cfg = running_config(det_files, tmp_path, 2)  # nothing left to train
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    again = next(h for h in resumed.hooks
                 if isinstance(h, TeacherCentroidHook))
    torch.testing.assert_close(again._counts, hook._counts, rtol=0, atol=0)
    torch.testing.assert_close(
        resumed.model.constants['roi_centers'], reached, rtol=0, atol=0)
    initial = torch.load(tmp_path / 'roi_centers.pth')
    assert not torch.allclose(reached, initial)


def test_running_needs_a_loss_reading_the_constant(det_files, tmp_path):
    from mmengine.runner import Runner
    cfg = running_config(det_files, tmp_path, 1)
    cfg.model.losses = {'kd': cfg.model.losses['kd']}
    with pytest.raises(ValueError, match="no loss reads 'const.roi_centers'"):
        Runner.from_cfg(cfg).train()


def trained(cfg, work_dir, max_iters):
    import copy

    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('running', [False, True])
def test_resume_with_centroids_equals_uninterrupted_run(
        det_files, tmp_path, running):
    """The centroid pass reads its own batches: it neither moves the
    training's data order nor its random state, so a resumed run (which
    reuses the saved centroids) trains exactly as an uninterrupted one."""
    cfg = running_config(det_files, tmp_path, 4)
    cfg.custom_hooks[1].num_iters = 2
    cfg.custom_hooks[1].running = running
    straight = trained(cfg, tmp_path / 'straight', 4)
    trained(cfg, tmp_path / 'resumed', 2)
    cfg.resume = True
    resumed = trained(cfg, tmp_path / 'resumed', 4)
    assert resumed.iter == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(
            a[key], b[key], rtol=0, atol=0, msg=f'{key} differs after resume')
    torch.testing.assert_close(
        straight.model.constants['roi_centers'],
        resumed.model.constants['roi_centers'], rtol=0, atol=0)


def test_tools_ask_the_hook_what_it_provides(det_files):
    """tools/benchmark.py and quickstart --fast need no hook names: the
    hook names its constants, its smoke-run settings and computes them."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    from mmkd.engine import ConstantHook
    from mmkd.engine.hooks.teacher_centroids import class_means
    from tiny_setups import roi_config
    hook = TeacherCentroidHook(name='centers', num_iters=50)
    assert isinstance(hook, ConstantHook)
    assert hook.constant_names() == ('centers', )
    assert hook.quick_settings() == dict(num_iters=2)
    cfg = roi_config(det_files)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    torch.manual_seed(0)
    got = hook.compute(model, [batch])
    torch.manual_seed(0)
    want = class_means(model, [batch], 'roi.emb', 'roi.labels', 4)
    assert list(got) == ['centers']
    torch.testing.assert_close(got['centers'], want, rtol=0, atol=0)
