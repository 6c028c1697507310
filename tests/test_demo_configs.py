"""The digits configs inherit each method from the same fragment as the
COCO/Cityscapes configs, so a method's defaults cannot drift apart."""
import os.path as osp

import pytest
from mmengine.config import Config

from tiny_setups import REPO

# demo config -> the full-size config of the same method
SAME_METHOD = {
    'faster_rcnn_r34_to_r18_digits_hint.py': 'faster_rcnn_r101_to_r50_hint.py',
    'faster_rcnn_r34_to_r18_digits_chen.py': 'faster_rcnn_r101_to_r50_chen.py',
    'faster_rcnn_r34_to_r18_digits_nd.py': 'faster_rcnn_r101_to_r50_nd.py',
    'faster_rcnn_r34_to_r18_digits_nd_tekap.py':
    'faster_rcnn_r101_to_r50_nd_tekap.py',
    'gfl_r34_to_r18_digits_ld.py': 'gfl_r101_to_r18_ld.py',
    'pspnet_r34_to_r18_digits_hint.py': 'pspnet_r101_to_r18_hint.py',
    'pspnet_r34_to_r18_digits_skd.py': 'pspnet_r101_to_r18_skd.py',
    'pspnet_r34_to_r18_digits_cwd.py': 'pspnet_r101_to_r18_cwd.py',
    'gfl_r34_to_r18_digits_cwd.py': 'gfl_r101_to_r50_cwd.py',
    'pspnet_r34_to_r18_digits_dist.py': 'deeplabv3_r101_to_r18_dist.py',
    'faster_rcnn_r34_to_r18_digits_pkd.py': 'faster_rcnn_r101_to_r50_pkd.py',
    'gfl_r34_to_r18_digits_mgd.py': 'retinanet_x101_to_r50_mgd.py',
    'pspnet_r34_to_r18_digits_mgd.py': 'pspnet_r101_to_r18_mgd.py',
    'gfl_r34_to_r18_digits_fgd.py': 'gfl_r101_to_r50_fgd.py',
}


@pytest.mark.parametrize('demo,full', SAME_METHOD.items())
def test_demo_config_has_the_method_of_the_full_config(demo, full):
    small = Config.fromfile(osp.join(REPO, 'configs', 'demo', demo)).model
    large = Config.fromfile(osp.join(REPO, 'configs', full)).model
    for key in ('type', 'losses', 'pairings', 'critic', 'critic_steps',
                'gp_weight'):
        assert small.get(key) == large.get(key), key
    # Chen's mu re-weights the student's own classification losses
    if 'chen' in demo:
        for head in (small.student.rpn_head, small.student.roi_head.bbox_head):
            assert head.loss_cls.loss_weight == 0.5
    # students and teachers are the digits models, not the COCO ones
    assert small.student != large.student
    assert '/demo/' in small.teacher.config.replace(osp.sep, '/')


def test_demo_pairs_point_at_the_teacher_their_config_writes():
    for pair, teacher in (('faster_rcnn_r34_to_r18_digits.py',
                           'faster_rcnn_r34_digits.py'),
                          ('gfl_r34_to_r18_digits.py', 'gfl_r34_digits.py'),
                          ('pspnet_r34_to_r18_digits.py',
                           'pspnet_r34_digits.py'),
                          ('segformer_mitb2_to_mitb0_digits.py',
                           'segformer_mitb2_digits.py')):
        cfg = Config.fromfile(
            osp.join(REPO, 'configs', 'demo', '_base_', pair))
        iters = Config.fromfile(osp.join(REPO, 'configs', 'demo',
                                         teacher)).train_cfg.max_iters
        stem = osp.splitext(teacher)[0]
        assert cfg.model.teacher.checkpoint == \
            f'work_dirs/{stem}/iter_{iters}.pth'


def test_digits_mobilebert_scales_only_the_feature_map_weights():
    """The digits MobileBERT config is the ADE20K one with the feature-map
    terms at 1e-4 (their official factors swamp the task when trained
    jointly with it; docs/method_notes.md); nothing else differs."""
    small = Config.fromfile(
        osp.join(REPO, 'configs', 'demo',
                 'segformer_mitb2_to_mitb0_digits_mobilebert.py')).model
    large = Config.fromfile(
        osp.join(REPO, 'configs',
                 'segformer_mitb2_to_mitb0_mobilebert.py')).model
    assert small.losses.keys() == large.losses.keys()
    for name, loss in large.losses.items():
        scale = 1e-4 if name.startswith('fmt') else 1.0
        assert small.losses[name].pop('loss_weight') == pytest.approx(
            loss.pop('loss_weight') * scale)
        assert small.losses[name] == loss
