import pytest
import torch
from torch.testing import assert_close

from mmkd.models.losses import NDLoss
from mmkd.registry import MODELS


def official_direct_norm_loss(s_emb, t_emb, centers, labels, nd_weight=1.0):
    """Written afresh from WangYZ1608/Knowledge-Distillation-via-ND,
    ``Detection/model/utils.py``, ``DirectNormLoss.project_center`` and
    ``forward``: one sample at a time, summed, times ``nd_weight``, divided by
    the number of labels (centres given as a tensor, not a JSON dict)."""
    loss = 0.0
    for s, t, i in zip(s_emb, t_emb, labels):
        center = centers[i.item()]
        e_c = center / center.norm(p=2)
        max_norm = max(s.norm(p=2), t.norm(p=2))
        loss += 1 - torch.dot(s, e_c) / max_norm
    return loss * nd_weight / len(labels)


def test_hand_computed():
    centers = torch.tensor([[3., 4.], [0., -2.]])  # unit: (0.6, 0.8), (0, -1)
    emb_s = torch.tensor([[3., 4.], [1., 1.], [0., -4.]])
    emb_t = torch.tensor([[0., 10.], [1., 0.], [1., 0.]])
    labels = torch.tensor([0, 0, 1])
    # sample 0: <s, e> = 5, max(5, 10) = 10 -> 0.5
    # sample 1: <s, e> = 1.4, max(sqrt 2, 1) = sqrt 2 -> 1 - 1.4 / sqrt 2
    # sample 2: <s, e> = 4, max(4, 1) = 4 -> 0
    expected = (0.5 + 1 - 1.4 / 2**0.5) / 3
    assert_close(NDLoss()(emb_s, emb_t, labels, centers),
                 torch.tensor(expected))
    assert_close(
        NDLoss(loss_weight=2.)(emb_s, emb_t, labels, centers),
        torch.tensor(2 * expected))


@pytest.mark.parametrize('loss_weight', [1., 1.5])
def test_matches_official_values_and_gradients(loss_weight):
    torch.manual_seed(0)
    # teacher norms around the students' so both branches of max are taken
    emb_s = torch.randn(16, 8, dtype=torch.float64)
    emb_t = torch.randn(16, 8, dtype=torch.float64)
    centers = torch.randn(5, 8, dtype=torch.float64)
    labels = torch.randint(0, 5, (16, ))
    norm_s, norm_t = emb_s.norm(dim=1), emb_t.norm(dim=1)
    assert (norm_s > norm_t).any() and (norm_s < norm_t).any()
    emb_s[0] = emb_t[0]  # a tie: Python's max picks the student
    s_ours = emb_s.clone().requires_grad_()
    s_ref = emb_s.clone().requires_grad_()
    ours = NDLoss(loss_weight)(s_ours, emb_t, labels, centers)
    ref = official_direct_norm_loss(s_ref, emb_t, centers, labels, loss_weight)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s_ours.grad, s_ref.grad)


def test_empty_is_zero_and_differentiable():
    emb_s = torch.zeros(0, 4, requires_grad=True)
    out = NDLoss()(emb_s, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
                   torch.ones(3, 4))
    assert out.item() == 0 and not torch.isnan(out)
    out.backward()
    assert_close(emb_s.grad, torch.zeros(0, 4))


def test_gradient_reaches_student_only():
    emb_s = torch.randn(4, 3, requires_grad=True)
    emb_t = torch.randn(4, 3, requires_grad=True)
    centers = torch.randn(2, 3, requires_grad=True)
    NDLoss()(emb_s, emb_t, torch.tensor([0, 1, 1, 0]), centers).backward()
    assert emb_s.grad is not None and emb_s.grad.abs().sum() > 0
    assert emb_t.grad is None and centers.grad is None


def test_zero_embeddings_are_finite():
    out = NDLoss()(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]),
                   torch.zeros(2, 3))
    assert torch.isfinite(out) and out.item() == 1.


def test_errors():
    loss = NDLoss()
    emb, labels = torch.zeros(2, 4), torch.tensor([0, 2])
    with pytest.raises(ValueError, match='D=4.*got \\(3, 5\\)'):
        loss(emb, emb, labels, torch.zeros(3, 5))
    with pytest.raises(ValueError, match='K=2 .*max label 2'):
        loss(emb, emb, labels, torch.zeros(2, 4))
    with pytest.raises(ValueError, match='min label -1'):
        loss(emb, emb, torch.tensor([-1, 0]), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='one shape'):
        loss(emb, torch.zeros(2, 5), labels, torch.zeros(3, 4))
    with pytest.raises(ValueError, match='labels must have shape'):
        loss(emb, emb, torch.tensor([0]), torch.zeros(3, 4))
    with pytest.raises(ValueError, match='integer'):
        loss(emb, emb, labels.float(), torch.zeros(3, 4))


def test_registered():
    loss = MODELS.build(dict(type='mmkd.NDLoss', loss_weight=1.5))
    assert isinstance(loss, NDLoss) and loss.loss_weight == 1.5
