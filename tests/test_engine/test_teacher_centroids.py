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

    from conftest import roi_config
    from mmkd.engine.hooks.teacher_centroids import class_means
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
