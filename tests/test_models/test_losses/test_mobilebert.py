"""MobileBERT's feature-map and attention transfer against transcriptions
of the official code (google-research ``mobilebert/run_pretraining.py``)."""
import pytest
import torch
from torch.testing import assert_close

from mmkd.models.losses import AttentionTransferLoss, FeatureMapTransferLoss


def official_layer_terms(teacher, student, hidden=100., beta=5000.,
                         gamma=5.):
    """Written afresh from the official layer-wise terms, one layer: a
    parameter-free layer norm (eps 1e-12) on the last axis and
    ``tf.losses.mean_squared_error`` (mean of every element) times
    ``hidden_distill_factor``; the squared difference of the per-token means
    (``beta``) and the absolute difference of the per-token biased variances
    (``gamma``), each averaged over the tokens."""

    def layer_norm(x):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean)**2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-12)

    mse = ((layer_norm(teacher) - layer_norm(student))**2).mean()
    t_mean, s_mean = teacher.mean(-1, True), student.mean(-1, True)
    t_var = ((teacher - t_mean)**2).mean(-1, True)
    s_var = ((student - s_mean)**2).mean(-1, True)
    return (hidden * mse + beta * ((t_mean - s_mean)**2).mean() +
            gamma * (t_var - s_var).abs().mean())


def official_attention_ce(teacher_scores, student_scores):
    """The official attention term, one layer: softmax of the teacher's
    attention logits against the log-softmax of the student's, summed over
    the keys, averaged over everything else (a cross-entropy)."""
    t = torch.softmax(teacher_scores, -1)
    return -(t * torch.log_softmax(student_scores, -1)).sum(-1).mean()


@pytest.mark.parametrize('weights', [(100., 5000., 5.), (1., 0., 0.)])
def test_feature_transfer_matches_official(weights):
    torch.manual_seed(0)
    s = torch.randn(2, 7, 6, requires_grad=True)  # (B, L, C) tokens
    t = 3 * torch.randn(2, 7, 6) + 1
    ours = FeatureMapTransferLoss(*weights, loss_weight=0.5)(s, t)
    s_ref = s.detach().clone().requires_grad_()
    ref = 0.5 * official_layer_terms(t, s_ref, *weights)
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(s.grad, s_ref.grad)


def test_feature_transfer_on_maps_normalises_channels():
    # an (N, C, H, W) map is a (N, H*W, C) token sequence
    torch.manual_seed(0)
    s, t = torch.randn(2, 6, 3, 4), torch.randn(2, 6, 3, 4)
    loss = FeatureMapTransferLoss()
    tokens = [x.flatten(2).transpose(1, 2) for x in (s, t)]
    assert_close(loss(s, t), loss(*tokens))
    assert_close(loss(s, t), official_layer_terms(tokens[1], tokens[0]))


def test_feature_transfer_rejects_negative_weights():
    with pytest.raises(ValueError, match='mean_weight must be a number >= 0'):
        FeatureMapTransferLoss(mean_weight=-1.)


def test_attention_transfer_is_official_ce_less_teacher_entropy():
    torch.manual_seed(0)
    scores_s = torch.randn(3, 2, 5, 5, requires_grad=True)  # windows, heads
    scores_t = 2 * torch.randn(3, 2, 5, 5)
    probs_t = torch.softmax(scores_t, -1)
    ours = AttentionTransferLoss(loss_weight=2.)(
        torch.softmax(scores_s, -1), probs_t)
    ref_s = scores_s.detach().clone().requires_grad_()
    ref = official_attention_ce(scores_t, ref_s)
    entropy = -(probs_t * probs_t.log()).sum(-1).mean()
    assert_close(ours, 2 * (ref - entropy))
    # the same gradient as the official cross-entropy, reaching the logits
    ours.backward()
    (2 * ref).backward()
    assert_close(scores_s.grad, ref_s.grad)


def test_attention_transfer_by_hand_and_head_average():
    a_t = torch.tensor([[[[0.5, 0.5]], [[1.0, 0.0]]]])  # (1, 2 heads, 1, 2)
    a_s = torch.tensor([[[[0.25, 0.75]], [[0.75, 0.25]]]])
    per_head = [
        0.5 * torch.log(torch.tensor(0.5 / 0.25)) +
        0.5 * torch.log(torch.tensor(0.5 / 0.75)),
        torch.log(torch.tensor(1 / 0.75)),
    ]
    assert_close(AttentionTransferLoss()(a_s, a_t), sum(per_head) / 2)
    # averaged heads: teacher (0.75, 0.25), student (0.5, 0.5)
    by_mean = 0.75 * torch.log(torch.tensor(0.75 / 0.5)) + 0.25 * torch.log(
        torch.tensor(0.25 / 0.5))
    assert_close(AttentionTransferLoss(head_reduce='mean')(a_s, a_t), by_mean)
    # a student with 1 head against a teacher with 2
    assert_close(
        AttentionTransferLoss(head_reduce='mean')(a_s.mean(1, True), a_t),
        by_mean)


def test_attention_transfer_checks_shapes_and_options():
    loss = AttentionTransferLoss()
    with pytest.raises(ValueError,
                       match="model.losses.at: .*head_reduce='mean'"):
        loss.check_shapes([torch.Size([4, 2, 9, 9])],
                          [torch.Size([4, 3, 9, 9])], 'model.losses.at')
    AttentionTransferLoss(head_reduce='mean').check_shapes(
        [torch.Size([4, 2, 9, 9])], [torch.Size([4, 3, 9, 9])], 'k')
    with pytest.raises(ValueError, match='queries and keys'):
        AttentionTransferLoss(head_reduce='mean').check_shapes(
            [torch.Size([4, 2, 9, 9])], [torch.Size([4, 3, 16, 16])], 'k')
    with pytest.raises(ValueError, match='takes attention maps'):
        loss.check_shapes([torch.Size([4, 9])], [torch.Size([4, 9])], 'k')
    with pytest.raises(ValueError, match="head_reduce must be one of"):
        AttentionTransferLoss(head_reduce='max')
