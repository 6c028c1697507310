"""SFTN's KL term between a student branch and the teacher it trains."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from ..losses.utils import check_temperature


def student_branch_kl(logits_r: Tensor,
                      logits_t: Tensor,
                      temperature: float = 1.0,
                      valid: Optional[Tensor] = None) -> Tensor:
    """``T^2 * mean KL(softmax(t / T) || softmax(r / T))`` over positions.

    The KL of `Learning Student-Friendly Teacher Networks for Knowledge
    Distillation <https://arxiv.org/abs/2102.07650>`_ (Park et al., NeurIPS
    2021), written there ``KL(q_R || q_T)`` in the (prediction || target)
    order of KD losses: the teacher's softened distribution is the
    reference. It is summed over the classes (dim 1) and averaged over the
    other positions, or over the ``valid`` ones. Nothing is detached:
    SFTN trains the teacher and the branch with it, so gradients reach
    both logits.

    Args:
        logits_r (Tensor): A student branch's logits, ``(N, C, ...)``.
        logits_t (Tensor): The teacher's logits, the same shape.
        temperature (float): Softmax temperature ``T``. Defaults to 1.0.
        valid (Tensor, optional): Positions that count, the shape of the
            logits without dim 1 (e.g. labelled pixels). None counts every
            position; none valid gives 0. Defaults to None.

    Example:
        >>> import torch
        >>> r, t = torch.zeros(1, 2), torch.tensor([[1e4, 0.]])
        >>> round(float(student_branch_kl(r, t)), 4)  # -log(1/2)
        0.6931
    """
    if logits_r.shape != logits_t.shape or logits_r.dim() < 2:
        raise ValueError(
            'student_branch_kl expects branch and teacher logits of one '
            f'shape (N, C, ...), got {tuple(logits_r.shape)} and '
            f'{tuple(logits_t.shape)}')
    T = check_temperature(temperature)
    log_p_r = F.log_softmax(logits_r / T, dim=1)
    log_p_t = F.log_softmax(logits_t / T, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_r)).sum(dim=1)
    if valid is None:
        return T * T * kl.mean()
    valid = valid.to(kl.dtype)
    # a sum over no pixel still touches both logits (zero gradients)
    return T * T * (kl * valid).sum() / valid.sum().clamp(min=1)
