"""Tiny datasets written to disk, tiny model configs and config builders.

Everything here is generated; nothing is downloaded. The detection set is in
COCO format, the segmentation set in mmseg's ``img_dir``/``ann_dir`` layout.
"""
import json
import os
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.registry import init_default_scope
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = ('square', 'bar', 'blob')


def write_coco(root: str,
               splits=(('train', 8), ('val', 4)),
               size: int = 64,
               seed: int = 0) -> str:
    """Images of coloured rectangles on noise, with their COCO boxes."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    image_id = ann_id = 0
    for split, count in splits:
        images, anns = [], []
        for _ in range(count):
            image_id += 1
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            for _ in range(rng.integers(1, 4)):
                label = int(rng.integers(0, len(CLASSES)))
                w, h = (int(v) for v in rng.integers(10, size // 2, 2))
                x, y = (int(v) for v in rng.integers(0, size - max(w, h), 2))
                img[y:y + h, x:x + w] = 80 + 80 * label
                ann_id += 1
                anns.append(
                    dict(
                        id=ann_id,
                        image_id=image_id,
                        category_id=label + 1,
                        bbox=[x, y, w, h],
                        area=w * h,
                        iscrowd=0))
            name = f'{split}_{image_id}.png'
            Image.fromarray(img).save(osp.join(root, 'images', name))
            images.append(
                dict(id=image_id, file_name=name, width=size, height=size))
        cats = [dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)]
        with open(osp.join(root, f'{split}.json'), 'w') as f:
            json.dump(
                dict(images=images, annotations=anns, categories=cats), f)
    return root


def write_seg(root: str,
              splits=(('train', 8), ('val', 4)),
              size: int = 64,
              seed: int = 0) -> str:
    """Images with rectangles and label maps (0 background, 255 ignored)."""
    rng = np.random.default_rng(seed)
    for split, count in splits:
        os.makedirs(osp.join(root, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(root, 'ann_dir', split), exist_ok=True)
        for i in range(count):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            label = np.zeros((size, size), np.uint8)
            for _ in range(2):
                c = int(rng.integers(1, len(CLASSES)))
                w, h = (int(v) for v in rng.integers(8, size // 2, 2))
                x, y = (int(v) for v in rng.integers(0, size - max(w, h), 2))
                img[y:y + h, x:x + w] = 90 * c
                label[y:y + h, x:x + w] = c
            label[:2] = 255
            Image.fromarray(img).save(
                osp.join(root, 'img_dir', split, f'{i}.png'))
            Image.fromarray(label).save(
                osp.join(root, 'ann_dir', split, f'{i}.png'))
    return root


DET_CONFIG = """
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
data_root = '{root}/'
metainfo = dict(classes={classes})
model = dict(
    backbone=dict(depth=18, base_channels={base}, init_cfg=None,
                  frozen_stages=-1, norm_eval=False),
    neck=dict(in_channels=[{base}, {base2}, {base4}, {base8}],
              out_channels={neck}),
    rpn_head=dict(in_channels={neck}, feat_channels={neck}),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels={neck}),
        bbox_head=dict(in_channels={neck}, fc_out_channels=32,
                       num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=50),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=50), rcnn=dict(max_per_img=20)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='train.json', data_prefix=dict(img='images/'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='val.json',
                 data_prefix=dict(img='images/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val.json')
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4,
                 val_interval=4)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch=False, interval=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
"""

SEG_CONFIG = """
_base_ = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
data_root = '{root}/'
metainfo = dict(classes={classes}, palette=[[0, 0, 0], [255, 0, 0],
                                            [0, 255, 0]])
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (64, 64)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(base_channels={base}, stem_channels={base},
                  norm_cfg=norm_cfg, init_cfg=None),
    decode_head=dict(in_channels={base8}, channels={neck}, num_classes=3,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels={base4}, channels={neck},
                        num_classes=3, norm_cfg=norm_cfg))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_pipeline = train_pipeline
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.png', seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, _delete_=True, pipeline=train_pipeline,
                 data_prefix=dict(img_path='img_dir/train',
                                  seg_map_path='ann_dir/train')))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, _delete_=True, pipeline=test_pipeline,
                 data_prefix=dict(img_path='img_dir/val',
                                  seg_map_path='ann_dir/val')))
test_dataloader = val_dataloader
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch=False, interval=2))
randomness = dict(seed=0, deterministic=True)
"""


#: a SegFormer (MiT backbone) on the segmentation set: ``base`` is the
#: embedding width, ``layers`` and ``heads`` the per-stage lists
MIT_CONFIG = """
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
data_root = '{root}/'
metainfo = dict(classes={classes}, palette=[[0, 0, 0], [255, 0, 0],
                                            [0, 255, 0]])
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(embed_dims={base}, num_layers={layers}, num_heads={heads},
                  drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(in_channels=[{base}, {base2}, {base5}, {base8}],
                     channels={neck}, num_classes=3, norm_cfg=norm_cfg))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
""" + SEG_CONFIG[SEG_CONFIG.index('train_pipeline = ['):].replace(
    "optim_wrapper = dict(optimizer=dict(lr=0.01))\n", '')


def write_config(path: str, template: str, root: str, base: int,
                 neck: int, **fields) -> str:
    """Write a tiny config; ``base`` is the ResNet width, ``neck`` the FPN's
    (or decode head's) channels, ``fields`` any other of the template's."""
    with open(path, 'w') as f:
        f.write(
            template.format(
                root=root,
                classes=CLASSES,
                base=base,
                base2=2 * base,
                base4=4 * base,
                base8=8 * base,
                neck=neck,
                **fields))
    return path


def save_teacher(config: str, out: str, seed: int = 1) -> str:
    """Build the model of ``config`` and save its weights as a checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict()), out)
    return out


def distill_config(files: dict, tap: str = 'neck', **loss_kwargs):
    """The student's config with its model wrapped in a hint distiller."""
    from mmengine.config import Config
    cfg = Config.fromfile(files['student'])
    cfg.model = dict(
        type='mmkd.SingleTeacherDistiller',
        student=cfg.model,
        teacher=dict(config=files['teacher'], checkpoint=files['ckpt']),
        losses=dict(
            hint=dict(
                type='mmkd.FeatureHintLoss',
                student=tap,
                teacher=tap,
                **loss_kwargs)))
    cfg.custom_imports = dict(imports=['mmkd'])
    cfg.custom_hooks = [dict(type='mmkd.ExactResumeHook')]
    return cfg


def run_script(*args, cwd=REPO, env=None, timeout=600):
    """Run a script of the repo with this interpreter; fail with its output."""
    import subprocess
    full_env = dict(os.environ, PYTHONPATH=REPO)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, *args] if args[0].endswith('.py') else list(args),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return proc


ROI_LOSSES = dict(
    kd=dict(
        type='mmkd.WeightedSoftCELoss',
        student='roi.cls',
        teacher='roi.cls',
        loss_weight=0.5),
    reg=dict(
        type='mmkd.BoundedRegressionLoss',
        student='roi.reg',
        teacher='roi.reg',
        loss_weight=0.5,
        inputs=dict(target='roi.reg_targets', weight='roi.reg_weights')),
    nd=dict(
        type='mmkd.NDLoss',
        student='roi.emb',
        teacher='roi.emb',
        inputs=dict(labels='roi.labels', centers='const.roi_centers')))


def roi_config(det_files, losses=ROI_LOSSES):
    cfg = distill_config(det_files)
    cfg.model.pairings = dict(roi=dict(type='mmkd.RoIPairing'))
    cfg.model.losses = losses
    return cfg


# A tiny one-stage detector of mmdet's config `{model_config}`: ResNet-18
# of width `base`, FPN `neck`, a head of `stacked_convs` convs and the
# fields `{head}`; data, schedule and runtime as conftest's Faster R-CNN.
DENSE_CONFIG = """
_base_ = 'mmdet::{model_config}'
data_root = '{root}/'
metainfo = dict(classes={classes})
model = dict(
    backbone=dict(depth=18, base_channels={base}, init_cfg=None,
                  frozen_stages=-1, norm_eval=False),
    neck=dict(in_channels=[{base}, {base2}, {base4}, {base8}],
              out_channels={neck}),
    bbox_head=dict(num_classes=3, in_channels={neck}, feat_channels={neck},
                   stacked_convs={stacked_convs}, {head}),
    test_cfg=dict(nms_pre=200, score_thr=0.0, max_per_img=20))
""" + DET_CONFIG[DET_CONFIG.index('train_pipeline'):]
#: GroupNorm for heads of 16 or 32 channels
TINY_GN = "norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)"
#: tiny heads of :data:`DENSE_CONFIG`: mmdet's config, the head's fields
DENSE_HEADS = dict(
    gfl=dict(model_config='gfl/gfl_r50_fpn_1x_coco.py',
             head=TINY_GN + ', anchor_generator=dict(octave_base_scale=3)'),
    retinanet=dict(model_config='retinanet/retinanet_r50_fpn_1x_coco.py',
                   head='anchor_generator=dict(octave_base_scale=2)'),
    atss=dict(model_config='atss/atss_r50_fpn_1x_coco.py',
              head=TINY_GN + ', anchor_generator=dict(octave_base_scale=3)'),
    fcos=dict(model_config='fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
              head=TINY_GN),
    # FCOS's tricks: distances in stride units, centerness on the box branch
    fcos_norm=dict(
        model_config='fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
        head=TINY_GN + ', norm_on_bbox=True, centerness_on_reg=True, '
        'center_sampling=True'))
GFL_CONFIG = DENSE_CONFIG.replace(
    '{model_config}', DENSE_HEADS['gfl']['model_config']).replace(
        '{head}', DENSE_HEADS['gfl']['head'])


def dense_setup(root: str,
                template: str = GFL_CONFIG,
                stacked_convs: int = 1,
                teacher_neck: int = 32,
                **fields) -> dict:
    """A tiny one-stage student (ResNet width 8, FPN 16) and teacher (width
    16, FPN ``teacher_neck``) of ``template`` (e.g. :data:`DENSE_CONFIG`
    with ``model_config`` and ``head`` in ``fields``) with
    ``stacked_convs`` head convs, the teacher's random weights saved."""
    data = write_coco(osp.join(root, 'data'))
    student = write_config(
        osp.join(root, 'student.py'), template, data, base=8, neck=16,
        stacked_convs=stacked_convs, **fields)
    teacher = write_config(
        osp.join(root, 'teacher.py'), template, data, base=16,
        neck=teacher_neck, stacked_convs=stacked_convs, **fields)
    ckpt = save_teacher(teacher, osp.join(root, 'teacher.pth'))
    return dict(root=root, student=student, teacher=teacher, ckpt=ckpt)


def gfl_setup(root: str, stacked_convs: int = 1,
              teacher_neck: int = 32) -> dict:
    """A tiny GFL student and teacher, as :func:`dense_setup`."""
    return dense_setup(root, GFL_CONFIG, stacked_convs, teacher_neck)


EXPORT_CHECK = """
import sys, json, torch
from {api} import {init}, {infer}
model = {init}(sys.argv[1], sys.argv[2], device='cpu')
result = {infer}(model, sys.argv[3])
assert not any(m.split('.')[0] == 'mmkd' for m in sys.modules), 'mmkd imported'
torch.save({field}, sys.argv[4])
"""


def check_export(runner, files, image, api, init, infer, field):
    """The exported student, loaded by plain mmdet/mmseg in a process that
    never imports mmkd, predicts what the distiller predicts."""
    work_dir = runner.work_dir
    out = osp.join(work_dir, 'export_pred.pth')
    script = osp.join(work_dir, 'check_export.py')
    with open(script, 'w') as f:
        f.write(
            EXPORT_CHECK.format(api=api, init=init, infer=infer, field=field))
    run_script(
        script,
        osp.join(work_dir, 'student_config.py'),
        osp.join(work_dir, 'student.pth'),
        image,
        out,
        cwd=work_dir,
        env=dict(PYTHONPATH=''))
    exported = torch.load(out)
    module = __import__(api, fromlist=[infer])
    model = runner.model
    model.cfg = runner.cfg
    result = getattr(module, infer)(model, image)
    ours = eval(field, dict(result=result))
    torch.testing.assert_close(ours, exported)
    return ours
