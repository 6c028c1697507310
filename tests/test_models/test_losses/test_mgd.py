import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.testing import assert_close

from mmkd.models.losses import MGDLoss
from mmkd.utils.export import student_state_dict
from tiny_setups import distill_config


def official_mgd(preds_s, preds_t, generation, alpha_mgd, lambda_mgd):
    """Written afresh from yzd-v/MGD, ``det/mmdet/distillation/losses/
    mgd.py``, ``FeatureLoss.get_dis_loss``: a (N, 1, H, W) uniform draw,
    positions above 1 - lambda zeroed, the generated map's summed squared
    error divided by N, times alpha."""
    n, _, h, w = preds_t.shape
    mat = torch.rand((n, 1, h, w))
    mat = torch.where(mat > 1 - lambda_mgd, 0, 1)
    new_fea = generation(preds_s * mat)
    return ((new_fea - preds_t)**2).sum() / n * alpha_mgd


@pytest.mark.parametrize('lambda_mgd', [0.65, 0.75])
def test_matches_official_values_and_gradients(lambda_mgd):
    torch.manual_seed(0)
    loss = MGDLoss(channels=6, lambda_mgd=lambda_mgd, loss_weight=2e-5)
    s = torch.randn(3, 6, 7, 5)
    t = torch.randn(3, 6, 7, 5)
    s_ours, s_ref = s.clone().requires_grad_(), s.clone().requires_grad_()
    torch.manual_seed(1)  # the same mask on both sides
    ours = loss(s_ours, t)
    torch.manual_seed(1)
    ref = official_mgd(s_ref, t, loss.generation, 2e-5, lambda_mgd)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s_ours.grad, s_ref.grad)


def test_mask_rate_and_generator_is_trained():
    torch.manual_seed(0)
    loss = MGDLoss(channels=2, lambda_mgd=0.65, loss_weight=1.)
    # what reaches the generation block: the student of ones, masked
    seen = []
    handle = loss.generation[0].register_forward_hook(
        lambda m, args, out: seen.append(args[0]))
    s = torch.ones(8, 2, 32, 32, requires_grad=True)
    t = torch.randn(8, 2, 32, 32, requires_grad=True)
    loss(s, t).backward()
    handle.remove()
    kept = float((seen[0][:, 0] != 0).float().mean())
    assert abs(kept - 0.35) < 0.02
    # every channel of a position is masked together
    assert torch.equal(seen[0][:, 0] != 0, seen[0][:, 1] != 0)
    assert loss.generation[0].weight.grad is not None
    assert s.grad is not None and t.grad is None


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match='channels'):
        MGDLoss(channels=0)
    with pytest.raises(ValueError, match='lambda_mgd'):
        MGDLoss(channels=4, lambda_mgd=1.0)
    with pytest.raises(ValueError, match='channels=3'):
        MGDLoss(channels=4)(torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='no layers yet'):
        MGDLoss()(torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4))


def _mgd_config(det_files, channels):
    cfg = distill_config(det_files)
    cfg.model.losses = dict(
        mgd=dict(type='mmkd.MGDLoss', student='neck', teacher='neck',
                 channels=channels))
    return cfg


def test_distiller_checks_channels_at_build(det_files):
    cfg = _mgd_config(det_files, 3)
    init_default_scope(cfg.default_scope)
    with pytest.raises(ValueError, match=r'model.losses.mgd.channels is 3'):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('given', [True, False])
def test_trains_its_generator_with_the_student(det_files, given):
    channels = Config.fromfile(det_files['teacher']).model.neck.out_channels
    # given, or taken from the teacher's map when the config has none
    cfg = _mgd_config(det_files, channels if given else None)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.distill_losses.mgd.channels == channels
    names = {n for n, _ in model.named_parameters()}
    assert 'distill_losses.mgd.generation.0.weight' in names
    loader = Runner.build_dataloader(cfg.train_dataloader)
    batch = model.data_preprocessor(next(iter(loader)), True)
    losses = model(**batch, mode='loss')
    assert float(losses['distill.mgd'].detach()) > 0
    losses['distill.mgd'].backward()
    assert model.distill_losses.mgd.generation[0].weight.grad is not None
    assert model.student.neck.fpn_convs[0].conv.weight.grad is not None
    assert all(p.grad is None for p in model.teacher.parameters())
    # saved and resumed with the distiller, dropped from the student export
    state = model.state_dict()
    assert 'distill_losses.mgd.generation.0.weight' in state
    assert not any('generation' in k for k in student_state_dict(state))
