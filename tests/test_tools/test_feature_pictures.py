"""tools/feature_pictures.py and the norm statistics it draws."""
import math
import os.path as osp

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from PIL import Image

from mmkd.visualization import channel_norms, norm_statistics
from tiny_setups import distill_config, run_script


def test_channel_norms_per_location():
    feature = torch.tensor([[[[3., 0.]], [[4., -2.]]]])  # (1, 2, 1, 2)
    torch.testing.assert_close(
        channel_norms(feature), torch.tensor([[[5., 2.]]]))
    torch.testing.assert_close(
        channel_norms(torch.tensor([[6., 8.], [0., -1.]])),
        torch.tensor([10., 1.]))


def test_norm_statistics_pool_locations_of_all_levels():
    levels = [
        torch.tensor([[[[3., 0.]], [[4., 0.]]]]),  # norms 5, 0
        torch.tensor([[[[0.]], [[2.]]]]),  # norm 2
    ]
    stats = norm_statistics(levels)
    assert stats['count'] == 3
    assert stats['mean'] == pytest.approx(7 / 3)
    # population std of (5, 0, 2) around 7/3: (64 + 49 + 1) / 9 / 3
    assert stats['std'] == pytest.approx(math.sqrt(114 / 27))
    assert stats['max'] == pytest.approx(5.0)


def test_tool_writes_png_for_tiny_detector(det_files, tmp_path):
    cfg = distill_config(det_files)
    config = str(tmp_path / 'hint_distill.py')
    cfg.dump(config)
    init_default_scope(cfg.default_scope)
    ckpt = str(tmp_path / 'distiller.pth')
    state = MODELS.build(cfg.model).state_dict()  # student and adapters
    torch.save(dict(state_dict=state), ckpt)
    image = osp.join(det_files['root'], 'data', 'images', 'val_9.png')
    out = str(tmp_path / 'features.png')
    proc = run_script('tools/feature_pictures.py', config, image,
                      '--checkpoint', ckpt, '--out', out, '--loss', 'hint')
    assert f'{len(state)} tensors loaded' in proc.stdout
    assert out in proc.stdout
    with Image.open(out) as img:
        assert img.format == 'PNG'
        # 3 columns (teacher, student, adapted: 16 vs 32 FPN channels) of
        # 3.4 in, 5 FPN levels + the norm panel of 3 in, at 80 dpi
        assert img.size == (816, 1440)
        assert len(img.convert('RGB').getcolors(1 << 20)) > 100  # not blank
