"""The RRR objective on one batch (Ross, Hughes & Doshi-Velez, IJCAI 2017): right answers (mean
cross-entropy) plus right reasons (λ1 times the squared input gradients where an annotation says
the input must not matter), trained by double backprop. :class:`hvnotes.algorithms.RRR` steps on
it; :mod:`hvnotes.rrr` re-exports it beside the trainers and find-another-explanation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.input_gradients import (
    _check_annotations,
    _check_inputs,
    _check_quantity,
    _per_example,
)

__all__ = ["rrr_loss"]


def rrr_loss(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    annotations: Tensor,
    l2_grads: float,
    *,
    quantity: str = "sum_log_probs",
) -> tuple[Tensor, Tensor, Tensor]:
    """The RRR objective on one batch (without the parameter L2, which is weight decay).

    Args:
        model: maps ``x`` ``(B, ...)`` to logits ``(B, K)``.
        x: inputs ``(B, ...)``; y: labels ``(B,)``.
        annotations: bool mask broadcastable to ``x`` (``(B, ...)`` or ``x[0]``'s shape);
            True marks an input that must not matter.
        l2_grads: λ1 >= 0, the weight of the right-reasons term.
        quantity: which output's input gradient is penalised (see :func:`input_gradients`);
            RRR's ``"sum_log_probs"`` unless a loss variant is being compared.

    Returns:
        ``(total, ce, rr)``: ``ce`` the mean cross-entropy, ``rr = λ1 · mean_n Σ_d (A_nd g_nd)²``
        with ``g = input_gradients(model, x, create_graph=True, quantity=quantity)``, and
        ``total = ce + rr``.
    """
    l2_grads = validation.check_number("l2_grads", l2_grads, low=0.0)
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError("x must be a Tensor of shape (B, ...)")
    _check_inputs(model, x)
    if not isinstance(y, Tensor) or y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape ({len(x)},), got {getattr(y, 'shape', y)}")
    validation.check_labels("y", y, n=len(x))
    mask = _check_annotations(annotations, x)
    _check_quantity(quantity)
    # One forward pass serves both terms: CE from the logits, the penalty from their log-softmax.
    x = x.detach().requires_grad_(True)
    logits = validation.check_logits("model", model(x), n=len(x))
    validation.check_labels("y", y, classes=logits.shape[1])
    ce = nn.functional.cross_entropy(logits, y)
    explained = _per_example(torch.log_softmax(logits, dim=1), quantity).sum()
    (grads,) = torch.autograd.grad(explained, x, create_graph=True)
    masked = torch.where(mask, grads, 0.0)
    rr = l2_grads / len(x) * (masked * masked).sum()  # = λ1 · mean_n Σ_d (A_nd g_nd)²
    return ce + rr, ce, rr
