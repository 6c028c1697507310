import filecmp
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmkd.datasets import compose_image, digit_crops, make_digits

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


def test_digit_crops_cut_the_digits_of_composed_images():
    scans = np.zeros((3, 8, 8))
    scans[:, 2:6, 2:6] = 16  # a square blob of ink
    labels = np.array([2, 5, 9])
    rng = np.random.default_rng(1)
    crops, digits = digit_crops(rng, scans, labels, 4, crop=24,
                                image_size=64, per_image=(2, 2),
                                scale=(12, 16))
    # the same images as compose_image draws, from the same random stream
    replay = np.random.default_rng(1)
    cats = []
    for _ in range(4):
        cats += compose_image(replay, scans, labels, 64, (2, 2), (12, 16))[2]
        for _ in range(2):
            replay.integers(-4, 5, 2)  # each crop's jitter
    assert digits.tolist() == cats and len(digits) == 8
    assert crops.shape == (8, 24, 24, 3) and crops.dtype == np.uint8
    # every crop holds its digit's ink: the blob is brighter or darker
    # than the texture around it by far
    spread = crops.reshape(8, -1).max(1).astype(int) - \
        crops.reshape(8, -1).min(1)
    assert (spread > 100).all()
    again, _ = digit_crops(np.random.default_rng(1), scans, labels, 4,
                           crop=24, image_size=64, per_image=(2, 2),
                           scale=(12, 16))
    np.testing.assert_array_equal(crops, again)
    with pytest.raises(ValueError, match='crop=80'):
        digit_crops(rng, scans, labels, 1, crop=80, image_size=64)
