import pytest
import torch
from mmengine.registry import DefaultScope
from torch.testing import assert_close

from mmkd.models.losses import (FeatureHintLoss, NDLoss, TeKAP,
                                WeightedSoftCELoss)
from mmkd.registry import MODELS


def test_alpha_zero_scales_the_inner_loss():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    inner = FeatureHintLoss(loss_weight=0.5)(s, t)
    for num_views, view_weight in [(3, 0.8), (1, 1.0), (0, 0.8)]:
        loss = TeKAP(
            dict(type='FeatureHintLoss', loss_weight=0.5),
            num_views=num_views,
            alpha=0.,
            view_weight=view_weight)
        assert_close(loss(s, t), (1 + num_views * view_weight) * inner)


def test_matches_hand_built_views():
    torch.manual_seed(0)
    z_s, z_t = torch.randn(4, 5), torch.randn(4, 5)
    kd = WeightedSoftCELoss(temperature=2.)
    loss = TeKAP(dict(type='WeightedSoftCELoss', temperature=2.))
    torch.manual_seed(123)
    out = loss(z_s, z_t)
    torch.manual_seed(123)
    expected = kd(z_s, z_t)
    for _ in range(3):
        view = 0.9 * z_t + 0.1 * (torch.randn(4, 5) * 1.0)
        expected = expected + 0.8 * kd(z_s, view)
    assert_close(out, expected)
    # fresh noise on the next call
    assert not torch.allclose(loss(z_s, z_t), out)


def test_multi_level_views_per_tensor():
    torch.manual_seed(0)
    s = [torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2)]
    t = (torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2))
    loss = TeKAP(
        dict(type='mmkd.FeatureHintLoss'),
        num_views=2,
        alpha=0.3,
        noise_std=0.5,
        view_weight=0.6)
    torch.manual_seed(7)
    out = loss(s, t)
    torch.manual_seed(7)
    hint = FeatureHintLoss()
    expected = hint(s, t)
    for _ in range(2):  # views outer, levels inner
        view = [0.7 * x + 0.3 * torch.randn_like(x) * 0.5 for x in t]
        expected = expected + 0.6 * hint(s, view)
    assert_close(out, expected)


def test_keep_norm_is_the_crd_view_at_the_teachers_norm():
    """Officially the feature view is L2-normalised by CRD's embedding; with
    keep_norm the view is that direction at the clean teacher's norm, so an
    MSE hint sees no 0.9 * t shrink."""
    torch.manual_seed(0)
    s = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    t = [3 + torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    loss = TeKAP(dict(type='mmkd.FeatureHintLoss'), num_views=1,
                 noise_std=0.1, view_weight=1.0, keep_norm=True)
    torch.manual_seed(5)
    out = loss(s, t)
    torch.manual_seed(5)
    hint = FeatureHintLoss()
    views = []
    for x in t:
        raw = (0.9 * x + 0.1 * torch.randn_like(x) * 0.1).flatten(1)
        unit = raw / raw.norm(dim=1, keepdim=True)  # CRD's Normalize
        norm_t = x.flatten(1).norm(dim=1, keepdim=True)
        views.append((unit * norm_t).view_as(x))
    assert_close(out, hint(s, t) + hint(s, views))
    # the unbiased view: a student equal to the teacher pays (almost) no
    # scale penalty, while the plain view asks for 0.9 * t
    plain = TeKAP(dict(type='mmkd.FeatureHintLoss'), num_views=1,
                  noise_std=0.1, view_weight=1.0)
    assert loss(t, t) < 0.05 * plain(t, t)


def test_extra_arguments_reach_inner_loss():
    torch.manual_seed(0)
    emb_s, emb_t = torch.randn(6, 4), torch.randn(6, 4)
    labels, centers = torch.randint(0, 3, (6, )), torch.randn(3, 4)
    loss = TeKAP(dict(type='NDLoss'), num_views=2, alpha=0.)
    assert_close(
        loss(emb_s, emb_t, labels, centers=centers),
        2.6 * NDLoss()(emb_s, emb_t, labels, centers))


def test_noise_dtype_and_teacher_detached():
    loss = TeKAP(dict(type='FeatureHintLoss'), noise_std=0.1, num_views=1)
    x_s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    x_t = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert loss.perturb(x_t).dtype == torch.float64
    assert not loss.perturb(x_t).requires_grad
    loss(x_s, x_t).backward()
    assert x_s.grad is not None and x_s.grad.abs().sum() > 0
    assert x_t.grad is None


def test_builds_in_mmkd_scope():
    # under another default scope, the short name still resolves in mmkd
    with DefaultScope.overwrite_default_scope('mmengine'):
        loss = MODELS.build(
            dict(
                type='mmkd.TeKAP',
                loss=dict(type='FeatureHintLoss'),
                num_views=1))
    assert isinstance(loss.loss, FeatureHintLoss) and loss.num_views == 1
    inner = FeatureHintLoss()
    assert TeKAP(inner).loss is inner


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_views=-1), 'num_views must be an integer >= 0'),
    (dict(num_views=1.5), 'num_views must be an integer >= 0'),
    (dict(alpha=-0.1), r'alpha must lie in \[0, 1\]'),
    (dict(alpha=1.5), r'alpha must lie in \[0, 1\]'),
    (dict(noise_std=-1.), 'noise_std must be >= 0'),
    (dict(keep_norm='yes'), 'keep_norm must be True or False'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TeKAP(dict(type='FeatureHintLoss'), **kwargs)


def test_bad_loss():
    with pytest.raises(TypeError, match='loss must be'):
        TeKAP('FeatureHintLoss')
    with pytest.raises(KeyError):
        TeKAP(dict(type='NoSuchLoss'))
