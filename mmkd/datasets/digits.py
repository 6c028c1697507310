"""A small real detection / segmentation set from scikit-learn's digits.

``sklearn.datasets.load_digits`` ships 1,797 real 8x8 scans of handwritten
digits inside the package, so nothing is downloaded. Each image here places
a few of them, scaled up, on a textured and noisy background; the same
images get COCO boxes (detection) and PNG label maps (segmentation).
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import numpy as np
from PIL import Image

CLASSES = tuple(str(d) for d in range(10))
TRAIN_SCANS = 1400  # scans 0-1399 make the train images, the rest val


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random texture plus pixel noise, ``(size, size, 3)`` float."""
    coarse = rng.uniform(0, 1, (6, 6, 3)).astype(np.float32)
    smooth = np.stack([
        np.asarray(
            Image.fromarray(coarse[..., c]).resize(
                (size, size), Image.BICUBIC)) for c in range(3)
    ], -1)
    tint = rng.uniform(40, 120, 3)
    noise = rng.normal(0, 12, (size, size, 3))
    return np.clip(tint + 60 * (smooth - 0.5) + noise, 0, 255)


def _alpha(scan: np.ndarray, side: int) -> np.ndarray:
    """An 8x8 scan (values 0-16) scaled to ``(side, side)`` opacities."""
    return np.asarray(
        Image.fromarray((scan / 16).astype(np.float32)).resize(
            (side, side), Image.BILINEAR)).clip(0, 1)


def _ink(rng: np.random.Generator) -> np.ndarray:
    """Bright ink mostly, dark sometimes: both stand out of the texture."""
    return rng.uniform(190, 255, 3) if rng.random() < 0.7 else rng.uniform(
        0, 25, 3)


def _place(rng: np.random.Generator, boxes: list, side: int,
           size: int) -> Tuple[int, int]:
    """A top-left corner whose square overlaps no placed box by much."""
    for _ in range(20):
        x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
        if all(_overlap((x, y, x + side, y + side), b) < 0.2 for b in boxes):
            break
    return x, y


def _overlap(a: Sequence[int], b: Sequence[int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / min((a[2] - a[0]) * (a[3] - a[1]),
                       (b[2] - b[0]) * (b[3] - b[1]))


def compose_image(rng: np.random.Generator, scans: np.ndarray,
                  labels: np.ndarray, size: int, per_image: Tuple[int, int],
                  scale: Tuple[int, int]):
    """One image, its boxes ``[x, y, w, h]``, labels and label map.

    Args:
        rng (np.random.Generator): The random source.
        scans (np.ndarray): ``(N, 8, 8)`` digit scans, values 0-16.
        labels (np.ndarray): ``(N,)`` their digits.
        size (int): Image side.
        per_image (tuple[int, int]): Inclusive range of digits per image.
        scale (tuple[int, int]): Inclusive range of a digit's side.

    Example:
        >>> scans = np.full((1, 8, 8), 16.)
        >>> img, boxes, cats, seg = compose_image(
        ...     np.random.default_rng(0), scans, np.array([3]), 32, (1, 1),
        ...     (8, 8))
        >>> img.shape, cats, int(seg.max())
        ((32, 32, 3), [3], 4)
    """
    img = _background(rng, size)
    seg = np.zeros((size, size), np.uint8)
    boxes, cats, placed = [], [], []
    for _ in range(int(rng.integers(per_image[0], per_image[1] + 1))):
        i = int(rng.integers(len(scans)))
        side = int(rng.integers(scale[0], scale[1] + 1))
        alpha = _alpha(scans[i], side)
        x, y = _place(rng, placed, side, size)
        placed.append((x, y, x + side, y + side))
        ink = _ink(rng)
        window = img[y:y + side, x:x + side]
        window[:] = window * (1 - alpha[..., None]) + ink * alpha[..., None]
        rows, cols = np.nonzero(alpha > 0.25)
        if len(rows) == 0:
            continue
        seg[y:y + side, x:x + side][alpha > 0.5] = labels[i] + 1
        boxes.append([
            x + int(cols.min()), y + int(rows.min()),
            int(cols.max() - cols.min() + 1),
            int(rows.max() - rows.min() + 1)
        ])
        cats.append(int(labels[i]))
    return img.astype(np.uint8), boxes, cats, seg


def digit_crops(rng: np.random.Generator,
                scans: np.ndarray,
                labels: np.ndarray,
                num_images: int,
                crop: int = 48,
                image_size: int = 128,
                per_image: Tuple[int, int] = (2, 5),
                scale: Tuple[int, int] = (18, 40)):
    """Crops of one digit each, cut from images made as :func:`make_digits`
    makes them, for classification (backbone pretraining).

    Each of ``num_images`` images is drawn by :func:`compose_image`; every
    digit in it gives a ``crop``-pixel window around its box (jittered,
    inside the image), so digits keep the set's scales, textures and
    neighbours.

    Args:
        rng (np.random.Generator): The random source.
        scans (np.ndarray): ``(N, 8, 8)`` digit scans, values 0-16.
        labels (np.ndarray): ``(N,)`` their digits.
        num_images (int): Images to cut from.
        crop (int): Crop side. Defaults to 48.
        image_size (int): Image side. Defaults to 128.
        per_image (tuple[int, int]): Digits per image. Defaults to (2, 5).
        scale (tuple[int, int]): Digit side in pixels. Defaults to (18, 40).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(M, crop, crop, 3)`` uint8 crops
        and their ``(M,)`` digits.

    Example:
        >>> scans = np.full((2, 8, 8), 16.)
        >>> crops, digits = digit_crops(
        ...     np.random.default_rng(0), scans, np.array([4, 7]), 3, crop=24,
        ...     image_size=48, per_image=(1, 1), scale=(8, 16))
        >>> crops.shape, crops.dtype, set(digits.tolist()) <= {4, 7}
        ((3, 24, 24, 3), dtype('uint8'), True)
    """
    if not 0 < crop <= image_size:
        raise ValueError(f'crop={crop} must satisfy 0 < crop <= '
                         f'image_size={image_size}')
    crops, digits = [], []
    for _ in range(num_images):
        img, boxes, cats, _ = compose_image(rng, scans, labels, image_size,
                                            per_image, scale)
        for (x, y, w, h), cat in zip(boxes, cats):
            cx, cy = (int(v) for v in rng.integers(-4, 5, 2))
            left = min(max(x + w // 2 + cx - crop // 2, 0), image_size - crop)
            top = min(max(y + h // 2 + cy - crop // 2, 0), image_size - crop)
            crops.append(img[top:top + crop, left:left + crop])
            digits.append(cat)
    return (np.stack(crops) if crops else np.zeros(
        (0, crop, crop, 3), np.uint8)), np.asarray(digits, np.int64)


def make_digits(root: str,
                num_train: int = 800,
                num_val: int = 200,
                image_size: int = 128,
                per_image: Tuple[int, int] = (2, 5),
                scale: Tuple[int, int] = (18, 40),
                seed: int = 0,
                progress: bool = True) -> Dict[str, str]:
    """Write the digits detection and segmentation sets under ``root``.

    Layout: ``img_dir/{train,val}/*.png`` (shared images),
    ``annotations/{train,val}.json`` (COCO, categories '0'-'9' with ids
    1-10),
    ``ann_dir/{train,val}/*.png`` (label maps: 0 background, d + 1 for
    digit d). Train images use scans 0-1399, val images the other 397, so
    validation digits are unseen handwriting. Deterministic for a seed; a
    root that already holds a set made with the same arguments is reused.

    Args:
        root (str): Output folder.
        num_train (int): Train images. Defaults to 800.
        num_val (int): Val images. Defaults to 200.
        image_size (int): Image side. Defaults to 128.
        per_image (tuple[int, int]): Digits per image. Defaults to (2, 5).
        scale (tuple[int, int]): Digit side in pixels. Defaults to (18, 40).
        seed (int): Random seed. Defaults to 0.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: Paths of the ``root`` and of each split's COCO json.
    """
    if not 0 < scale[0] <= scale[1] <= image_size:
        raise ValueError(f'scale={tuple(scale)} must satisfy 0 < min <= max '
                         f'<= image_size={image_size}')
    if not 0 <= per_image[0] <= per_image[1]:
        raise ValueError(f'per_image={tuple(per_image)} must satisfy '
                         '0 <= min <= max')
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train={num_train} and num_val={num_val} '
                         'must be >= 1')
    from sklearn.datasets import load_digits
    from tqdm import tqdm
    params = dict(
        num_train=num_train,
        num_val=num_val,
        image_size=image_size,
        per_image=list(per_image),
        scale=list(scale),
        seed=seed,
        version=1)
    meta = osp.join(root, 'meta.json')
    paths = dict(
        root=root,
        **{
            s: osp.join(root, 'annotations', f'{s}.json')
            for s in ('train', 'val')
        })
    if osp.isfile(meta):
        with open(meta) as f:
            if json.load(f) == params:
                return paths
    digits = load_digits()
    splits = (('train', num_train, slice(0, TRAIN_SCANS)),
              ('val', num_val, slice(TRAIN_SCANS, None)))
    bar = tqdm(total=num_train + num_val, desc='digits', disable=not progress)
    for index, (split, count, scans) in enumerate(splits):
        rng = np.random.default_rng([seed, index])
        for sub in ('img_dir', 'ann_dir'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        images, anns = [], []
        for image_id in range(1, count + 1):
            img, boxes, cats, seg = compose_image(rng, digits.images[scans],
                                                  digits.target[scans],
                                                  image_size, per_image, scale)
            name = f'{split}_{image_id:05d}.png'
            Image.fromarray(img).save(osp.join(root, 'img_dir', split, name))
            Image.fromarray(seg).save(osp.join(root, 'ann_dir', split, name))
            images.append(
                dict(
                    id=image_id,
                    file_name=name,
                    width=image_size,
                    height=image_size))
            for box, cat in zip(boxes, cats):
                anns.append(
                    dict(
                        id=len(anns) + 1,
                        image_id=image_id,
                        category_id=cat + 1,
                        bbox=box,
                        area=box[2] * box[3],
                        iscrowd=0))
            bar.update()
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(paths[split], 'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=anns,
                    categories=[
                        dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)
                    ]), f)
    bar.close()
    with open(meta, 'w') as f:
        json.dump(params, f)
    return paths
