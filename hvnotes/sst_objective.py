"""SST's training objective (Bassan, Eliav & Gur, ICLR 2025): the explanation head's mask
(the released code's hard threshold, or straight-through), training's own fills of the
complement, and the dual loss ``CE + lam * faithfulness + xi * cardinality``; the explanation
itself is one forward pass (:func:`sst_explain`). :class:`hvnotes.algorithms.SST` steps on
:func:`sst_loss`; :mod:`hvnotes.sst` re-exports all of it beside the trainers. It builds its
masked inputs with its own code, never the checker's (:mod:`hvnotes.sufficiency`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.notions import check_notion, check_pgd

__all__ = ["THRESHOLDS", "hard_threshold", "sst_explain", "sst_loss", "straight_through"]

THRESHOLDS = ("ste", "hard")


def _training_uniform(shape, lo: float, hi: float, like: Tensor, generator) -> Tensor:
    """Training's own U[lo, hi) of ``shape``, drawn on the generator's device, returned on ``like``'s."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=like.dtype)
    return (lo + (hi - lo) * u).to(like.device)


def hard_threshold(scores: Tensor, tau: float = 0.5) -> Tensor:
    """``1[s >= tau]`` as floats, with **no gradient**: the mask of the released code.

    Booleans carry no gradient, so the faithfulness loss cannot reach the explanation head; the
    only signal it gets is the cardinality term pushing every score down. Notebook 04 shows the
    consequence: the masks shrink to empty.
    """
    return (scores >= tau).to(scores.dtype).detach()


def straight_through(scores: Tensor, tau: float = 0.5) -> Tensor:
    """Hard mask forward, identity gradient backward (Bengio et al. 2013).

    The value is exactly ``1[s >= tau]``; the gradient w.r.t. ``scores`` is 1, so w.r.t. the
    head's pre-sigmoid output it is the sigmoid's derivative ``s (1 - s)``.
    """
    hard = (scores >= tau).to(scores.dtype)
    return hard + (scores - scores.detach())  # (s - s) is exactly 0: the value stays 0/1


def _training_fill(model, x, keep, target, notion, baseline, eps, alpha, steps, bounds, gen):
    """The values training puts on the complement (detached): training's own code path."""
    lo, hi = bounds
    if notion == "baseline":
        return (
            torch.full_like(x, float(baseline))
            if not isinstance(baseline, Tensor)
            else (baseline.to(x).expand_as(x))
        )
    if notion == "probabilistic":
        return _training_uniform(x.shape, lo, hi, x, gen)
    # robust: PGD restricted to the complement, attacking the model's own prediction
    free = keep < 0.5
    z = (x + _training_uniform(x.shape, -eps, eps, x, gen)).clamp(lo, hi)
    lower, upper = (x - eps).clamp(lo, hi), (x + eps).clamp(lo, hi)  # ball and range, once
    for _ in range(steps):
        z.requires_grad_(True)
        loss = F.cross_entropy(model(torch.where(free, z, x)), target)
        (g,) = torch.autograd.grad(loss, z)
        z = torch.clamp(z.detach() + alpha * g.sign(), lower, upper)
    return z.detach()


def sst_loss(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    notion: str = "baseline",
    xi: float = 1.0,
    lam: float = 1.0,
    tau: float = 0.5,
    threshold: str = "ste",
    baseline: float | Tensor = 0.0,
    eps: float = 0.12,
    alpha: float = 0.01,
    steps: int = 10,
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """SST objective ``CE(f(x), y) + lam * CE(f(x_S; z_S̄), argmax f(x)) + xi * mean(s)``.

    Args:
        model: has ``logits_and_scores(x) -> (logits (B, C), scores (B, *shape))``.
        x, y: a batch ``(B, *shape)`` and labels ``(B,)``.
        notion: how ``z`` fills the complement while training: baseline / probabilistic
            (uniform on ``bounds``) / robust (PGD with ``eps``, ``alpha``, ``steps``).
        threshold: ``"ste"`` (straight-through: trains the mask) or ``"hard"`` (the released
            code's no-gradient threshold).

    Returns:
        ``(total, ce, faithfulness, size)``: the loss to minimise and three detached scalars
        (``size`` = mean fraction of features kept in this batch). ``train.fit`` accepts it.
    """
    check_notion(notion)
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    if not hasattr(model, "logits_and_scores"):
        raise TypeError(
            "model must have logits_and_scores(x) -> (logits, scores), e.g. DualHeadMLP"
        )
    if notion == "robust":
        check_pgd(eps, alpha, steps)
    validation.check_number("xi", xi, low=0.0)
    validation.check_number("lam", lam, low=0.0)
    _check_tau(tau)
    logits, scores = model.logits_and_scores(x)
    ce = F.cross_entropy(logits, y)
    target = logits.argmax(dim=1).detach()  # faithful to the model's own prediction
    keep = (straight_through if threshold == "ste" else hard_threshold)(scores, tau)
    fill = _training_fill(
        model, x, keep.detach(), target, notion, baseline, eps, alpha, steps, bounds, generator
    )
    # a product, not torch.where: the straight-through gradient reaches the mask through it
    faith = F.cross_entropy(model(keep * x + (1 - keep) * fill), target)
    cardinality = scores.mean()
    total = ce + lam * faith + xi * cardinality
    return total, ce.detach(), faith.detach(), keep.detach().mean()


def _check_tau(tau) -> float:
    """The mask threshold on sigmoid scores: a number in [0, 1] (above 1 nothing is ever kept)."""
    try:
        return validation.check_number("tau", tau, low=0.0, high=1.0)
    except TypeError as err:
        raise ValueError(f"{err} (a number in [0, 1])") from None


def sst_explain(model: nn.Module, x: Tensor, tau: float = 0.5) -> Tensor:
    """The SST explanation: one forward pass, ``scores >= tau``; bool ``(N, *shape)``."""
    _check_tau(tau)
    with validation.evaluating(model), torch.no_grad():
        return model.scores(x) >= tau
