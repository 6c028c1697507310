import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from mmkd.models.losses.holistic import (HolisticCritic, HolisticKDLoss,
                                         SelfAttention, critic_loss,
                                         gradient_penalty)
from mmkd.registry import MODELS


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions and double backward: one thread avoids the
    oversubscription that slows them a hundredfold on loaded shared hosts."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class LinearCritic(nn.Module):
    """``D(x) = <w, x>`` per sample: its input gradient is ``w``."""

    def __init__(self, shape):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(*shape))

    def forward(self, x, images=None):
        return (x * self.weight).flatten(1).sum(1)


def quadratic_critic(x):
    """``D(x) = ||x||^2`` per sample: its input gradient is ``2 x``."""
    return (x**2).flatten(1).sum(1)


def maps(n=2, c=3, size=16, requires_grad=False):
    logits = torch.randn(n, c, size, size, requires_grad=requires_grad)
    return logits, logits.softmax(dim=1)


def official_critic_loss(critic,
                         logits_s,
                         logits_t,
                         lambda_d=0.1,
                         lambda_gp=10.):
    """Transcription of the official ``NetModel.discriminator_backward``:
    ``lambda_d * CriterionAdv + lambda_d * CriterionAdditionalGP``."""
    d_real = critic(logits_t.detach())
    d_fake = critic(logits_s.detach())
    adv = -torch.mean(d_real) + d_fake.mean()
    n = logits_t.size(0)
    alpha = torch.rand(n, 1, 1, 1).expand_as(logits_t)
    mixed = alpha * logits_t.detach() + (1 - alpha) * logits_s.detach()
    mixed.requires_grad_(True)
    out = critic(mixed)
    grad = torch.autograd.grad(
        outputs=out,
        inputs=mixed,
        grad_outputs=torch.ones(out.size()),
        retain_graph=True,
        create_graph=True)[0]
    grad_l2norm = torch.sqrt(torch.sum(grad.view(n, -1)**2, dim=1))
    gp = torch.mean((grad_l2norm - 1)**2)
    return lambda_d * adv + lambda_d * lambda_gp * gp


def fixed_sigma(critic):
    """The critic in train mode (batch-statistics BatchNorm) with its
    spectral norms frozen, so that repeated calls are the same function."""
    critic.train()
    critic.features.eval()
    return critic


def test_critic_reads_logits_through_batch_norm_by_default():
    torch.manual_seed(0)
    critic = fixed_sigma(HolisticCritic(3, base_channels=4))
    assert critic.input_type == 'logits'
    norm = critic.preprocess
    assert isinstance(norm, nn.BatchNorm2d) and norm.num_features == 3
    assert norm.weight in set(critic.parameters())  # trained with the critic
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.)
        norm.bias.uniform_(-1., 1.)
    logits, _ = maps(n=3)
    # official Discriminator.forward: preprocess_additional (BatchNorm2d on
    # the batch's statistics), then the convolutions
    x = F.batch_norm(
        logits, None, None, norm.weight, norm.bias, training=True, eps=1e-5)
    expected = critic.score(critic.features(x)).mean(dim=(1, 2, 3))
    assert_close(critic(logits), expected)
    # so a per-class affine change of the logits is normalised away
    scale = torch.tensor([2., 5., .5]).view(1, 3, 1, 1)
    assert_close(
        critic(scale * logits - 3.), critic(logits), atol=1e-4, rtol=1e-4)


def test_critic_on_probabilities_has_no_preprocessing():
    critic = HolisticCritic(3, input_type='probs', base_channels=4)
    assert isinstance(critic.preprocess, nn.Identity)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())


def test_critic_scores_each_sample():
    torch.manual_seed(0)
    critic = HolisticCritic(
        3, input_type='probs', in_image_channels=3, base_channels=4)
    _, probs = maps()
    images = torch.rand(2, 3, 64, 48)
    scores = critic(probs, images)
    assert scores.shape == (2, )
    # the image conditions the score
    assert not torch.allclose(scores, critic(probs, images.flip(-1)))
    # any map of at least 16x16
    assert critic(torch.rand(1, 3, 24, 40), torch.rand(1, 3, 8, 8)).shape \
        == (1, )


def test_critic_convolutions_are_spectrally_normalised():
    torch.manual_seed(0)
    critic = HolisticCritic(3, base_channels=4)
    with torch.no_grad():
        for _ in range(30):  # power iterations run in train mode
            critic(torch.rand(1, 3, 16, 16))
    convs = [
        m for m in critic.modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (4, 4)
    ]
    assert len(convs) == 4
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert_close(sigma, torch.tensor(1.), rtol=1e-3, atol=1e-3)


def test_self_attention_mixes_positions():
    torch.manual_seed(0)
    attn = SelfAttention(8)
    x = torch.randn(1, 8, 3, 3)
    assert torch.equal(attn(x), x)  # gamma starts at 0
    with torch.no_grad():
        attn.gamma.fill_(1.)
    moved = x.clone()
    moved[0, :, 0, 0] += 1.
    # a change at one position reaches the opposite corner
    assert not torch.allclose(attn(moved)[0, :, 2, 2], attn(x)[0, :, 2, 2])


def test_critic_bad_inputs_raise():
    critic = HolisticCritic(3, base_channels=4)
    with pytest.raises(ValueError, match=r'\(2, 4, 16, 16\)'):
        critic(torch.rand(2, 4, 16, 16))
    with pytest.raises(ValueError, match=r'\(15, 16\)'):
        critic(torch.rand(2, 3, 15, 16))
    with pytest.raises(ValueError, match='in_image_channels=0'):
        critic(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    conditioned = HolisticCritic(3, in_image_channels=3, base_channels=4)
    for images in (None, torch.rand(2, 1, 16, 16), torch.rand(1, 3, 16, 16)):
        with pytest.raises(ValueError, match='images'):
            conditioned(torch.rand(2, 3, 16, 16), images)
    with pytest.raises(ValueError, match='num_classes=0'):
        HolisticCritic(0)
    with pytest.raises(ValueError, match='in_image_channels=-1'):
        HolisticCritic(3, in_image_channels=-1)
    with pytest.raises(
            ValueError, match=r"'logits', 'probs'.*input_type='softmax'"):
        HolisticCritic(3, input_type='softmax')


def test_gradient_penalty_of_linear_critic():
    torch.manual_seed(0)
    critic = LinearCritic((3, 4, 4))
    probs_s, probs_t = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    norm = critic.weight.detach().norm()
    assert_close(gradient_penalty(critic, probs_s, probs_t), (norm - 1)**2)
    expected = (
        critic(probs_s).mean() - critic(probs_t).mean() + 10 * (norm - 1)**2)
    assert_close(critic_loss(critic, probs_s, probs_t), expected)
    assert_close(
        critic_loss(critic, probs_s, probs_t, gp_weight=0.),
        critic(probs_s).mean() - critic(probs_t).mean())


def test_gradient_penalty_is_taken_at_interpolates():
    torch.manual_seed(0)
    probs_s, probs_t = torch.rand(4, 2, 3, 3), torch.rand(4, 2, 3, 3)
    torch.manual_seed(1)
    penalty = gradient_penalty(quadratic_critic, probs_s, probs_t)
    torch.manual_seed(1)
    alpha = torch.rand(4, 1, 1, 1)  # documented draw: one alpha per sample
    mixed = alpha * probs_t + (1 - alpha) * probs_s
    expected = ((2 * mixed.flatten(1).norm(dim=1) - 1)**2).mean()
    assert_close(penalty, expected)
    for end in (probs_s, probs_t):  # neither end point
        at_end = ((2 * end.flatten(1).norm(dim=1) - 1)**2).mean()
        assert not torch.allclose(penalty, at_end)


def test_gradient_penalty_of_critic_is_non_negative():
    torch.manual_seed(0)
    critic = HolisticCritic(3, base_channels=4)
    for _ in range(3):
        _, probs_s = maps()
        _, probs_t = maps()
        assert gradient_penalty(critic, probs_s, probs_t).item() >= 0.


def test_critic_loss_trains_the_critic_only():
    torch.manual_seed(0)
    critic = HolisticCritic(3, in_image_channels=3, base_channels=4)
    logits_s, probs_s = maps(requires_grad=True)
    logits_t, probs_t = maps(requires_grad=True)
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    critic_loss(critic, probs_s, probs_t, images).backward()
    assert logits_s.grad is None and logits_t.grad is None
    assert images.grad is None
    for name, param in critic.named_parameters():
        assert param.grad is not None, name


def test_critic_loss_value():
    torch.manual_seed(0)
    critic = HolisticCritic(3, base_channels=4).eval()  # fixed sigma
    _, probs_s = maps()
    _, probs_t = maps()
    torch.manual_seed(1)
    loss = critic_loss(critic, probs_s, probs_t, gp_weight=10.)
    torch.manual_seed(1)
    penalty = gradient_penalty(critic, probs_s, probs_t)
    with torch.no_grad():
        gap = critic(probs_s).mean() - critic(probs_t).mean()
    assert_close(loss, gap + 10 * penalty)
    with pytest.raises(ValueError, match=r'\(2, 3, 16, 16\).*\(2, 3, 32'):
        critic_loss(critic, probs_s, torch.rand(2, 3, 32, 32))


def test_critic_loss_matches_official_discriminator_loss():
    torch.manual_seed(0)
    critic = fixed_sigma(HolisticCritic(3, base_channels=4))
    logits_s, _ = maps(n=3)
    logits_t, _ = maps(n=3)
    twin = copy.deepcopy(critic)
    torch.manual_seed(1)
    loss = critic_loss(critic, logits_s, logits_t, loss_weight=0.1)
    torch.manual_seed(1)
    expected = official_critic_loss(twin, logits_s, logits_t)
    assert_close(loss, expected)
    loss.backward()
    expected.backward()
    for (name, param), twin_param in zip(critic.named_parameters(),
                                         twin.parameters()):
        assert_close(param.grad, twin_param.grad, msg=name)
    assert critic.preprocess.weight.grad.abs().sum() > 0


def test_critic_learns_to_prefer_teacher_maps():
    torch.manual_seed(0)
    critic = HolisticCritic(2, input_type='probs', base_channels=4)
    optim = torch.optim.Adam(critic.parameters(), lr=1e-3)
    probs_s = torch.full((4, 2, 16, 16), 0.5)  # unsure student
    probs_t = (torch.rand(4, 1, 16, 16) > 0.5).float()
    probs_t = torch.cat([probs_t, 1 - probs_t], dim=1)  # confident teacher
    for _ in range(20):
        optim.zero_grad()
        critic_loss(critic, probs_s, probs_t).backward()
        optim.step()
    with torch.no_grad():
        assert critic(probs_t).mean() > critic(probs_s).mean()


def bound(critic, **kwargs) -> HolisticKDLoss:
    loss = HolisticKDLoss(**kwargs)
    loss.bind(critic)
    return loss


def test_holistic_loss_value_and_gradients_of_linear_critic():
    torch.manual_seed(0)
    critic = LinearCritic((3, 4, 4))
    probs_s = torch.rand(2, 3, 4, 4, requires_grad=True)
    loss = bound(critic)(probs_s, probs_s.detach())
    assert_close(loss, -0.1 * critic(probs_s).mean())
    loss.backward()
    assert critic.weight.grad is None
    expected = -0.1 * critic.weight.detach().expand(2, 3, 4, 4) / 2
    assert_close(probs_s.grad, expected)


def test_holistic_loss_matches_official_student_term():
    """Official ``student_backward``: ``lambda_d * CriterionAdvForG`` on the
    critic's score of the student's raw logits."""
    torch.manual_seed(0)
    critic = fixed_sigma(HolisticCritic(3, base_channels=4))
    logits_s, _ = maps(n=3, requires_grad=True)
    twin_logits = logits_s.detach().clone().requires_grad_(True)
    loss = bound(critic)(logits_s, logits_s.detach())
    expected = 0.1 * -critic(twin_logits).mean()
    assert_close(loss, expected)
    critic.zero_grad()
    loss.backward()
    assert all(param.grad is None for param in critic.parameters())
    expected.backward()
    assert_close(logits_s.grad, twin_logits.grad)
    assert logits_s.grad.abs().sum() > 0


def test_holistic_loss_reaches_student_not_critic():
    torch.manual_seed(0)
    critic = HolisticCritic(3, in_image_channels=3, base_channels=4)
    logits_s, probs_s = maps(requires_grad=True)
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = bound(critic, loss_weight=0.5)(probs_s, probs_s.detach(), images)
    loss.backward()
    assert logits_s.grad.abs().sum() > 0
    assert images.grad is None
    assert all(param.grad is None for param in critic.parameters())
    critic.eval()
    assert_close(
        bound(critic, loss_weight=0.5)(probs_s, probs_s.detach(), images),
        -0.5 * critic(probs_s, images).mean())
    with pytest.raises(ValueError, match='images'):
        bound(critic)(probs_s, probs_s.detach())
    with pytest.raises(RuntimeError, match=r'no critic: bind one'):
        HolisticKDLoss()(probs_s, probs_s.detach())


def test_holistic_loss_keeps_both_maps_for_the_critic():
    torch.manual_seed(0)
    critic = HolisticCritic(3, input_type='probs', base_channels=4)
    logits_s, _ = maps(size=32, requires_grad=True)
    logits_t = torch.randn_like(logits_s)
    valid = torch.ones(2, 1, 32, 32, dtype=torch.bool)
    valid[:, :, :16] = False
    loss = bound(critic)
    loss(logits_s, logits_t, valid_mask=valid)
    maps_s, maps_t, images = loss.critic_batch
    assert images is None and not maps_s.requires_grad
    assert_close(maps_t[:, :, 16:], logits_t.softmax(dim=1)[:, :, 16:])
    assert not maps_s[:, :, :16].any() and not maps_t[:, :, :16].any()


def test_builds_from_registry():
    critic = MODELS.build(
        dict(type='mmkd.HolisticCritic', num_classes=19, in_image_channels=3))
    assert isinstance(critic, HolisticCritic)
    assert critic.features[0][0].in_channels == 22
    assert critic.features[0][0].out_channels == 64
    assert critic.input_type == 'logits'
    assert critic.preprocess.num_features == 19
    loss = MODELS.build(dict(type='mmkd.HolisticKDLoss'))
    assert loss.loss_weight == 0.1
