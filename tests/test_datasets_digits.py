import filecmp
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmkd.datasets import make_digits

SMALL = dict(
    num_train=6, num_val=3, image_size=64, scale=(12, 24), progress=False)


def files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = make_digits(str(tmp_path / 'a'), seed=3, **SMALL)['root']
    b = make_digits(str(tmp_path / 'b'), seed=3, **SMALL)['root']
    c = make_digits(str(tmp_path / 'c'), seed=4, **SMALL)['root']
    assert files(a) == files(b) and len(files(a)) == 2 * 9 + 3
    _, mismatch, errors = filecmp.cmpfiles(a, b, files(a), shallow=False)
    assert mismatch == [] and errors == []
    _, mismatch, _ = filecmp.cmpfiles(a, c, files(a), shallow=False)
    assert 'annotations/train.json' in mismatch


def test_coco_boxes_inside_images_and_labels_match(tmp_path):
    root = make_digits(str(tmp_path / 'd'), seed=0, **SMALL)['root']
    for split in ('train', 'val'):
        coco = COCO(osp.join(root, 'annotations', f'{split}.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
            [str(d) for d in range(10)]
        assert len(coco.getImgIds()) == SMALL[f'num_{split}']
        for ann in coco.loadAnns(coco.getAnnIds()):
            img = coco.loadImgs(ann['image_id'])[0]
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0
            assert 0 <= x and x + w <= img['width']
            assert 0 <= y and y + h <= img['height']
            seg = np.array(
                Image.open(osp.join(root, 'ann_dir', split, img['file_name'])))
            # the digit's pixels inside its box carry its label
            window = seg[y:y + h, x:x + w]
            assert (window == ann['category_id']).any()
            assert seg.max() <= 10


def test_rerun_reuses_what_exists(tmp_path):
    root = make_digits(str(tmp_path / 'e'), **SMALL)['root']
    json_path = osp.join(root, 'annotations', 'train.json')
    stamp = os.stat(json_path).st_mtime_ns
    make_digits(root, **SMALL)
    assert os.stat(json_path).st_mtime_ns == stamp
    make_digits(root, **dict(SMALL, num_train=7))  # new arguments: remade
    assert os.stat(json_path).st_mtime_ns != stamp


@pytest.mark.parametrize('kwargs, match', [
    (dict(scale=(8, 80)), r'scale=\(8, 80\) must satisfy .* <= '
     r'image_size=64'),
    (dict(per_image=(3, 2)), r'per_image=\(3, 2\)'),
    (dict(num_val=0), 'num_val=0'),
])
def test_bad_arguments_fail_before_writing(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_digits(str(tmp_path / 'f'), **dict(SMALL, **kwargs))
    assert not (tmp_path / 'f').exists()
