"""The sufficiency checker's fills of the complement (notebook 04): what ``(x_S; z_S̄)`` is.

A subset ``S`` is sufficient when the prediction survives filling the rest; this module builds
the filled inputs, and :mod:`hvnotes.sufficiency` counts how often the prediction survives them.
:func:`complement` fills the rest for the baseline and probabilistic notions, and
:func:`pgd_complement` attacks it for the robust notion (projected gradient ascent, with
:func:`project` its projection). It shares no code with SST training (:mod:`hvnotes.sst`), so a
bug in how training builds masked inputs cannot make the evaluation agree with it; the notions'
argument checks are in :mod:`hvnotes.notions`. Every name here is re-exported by
:mod:`hvnotes.sufficiency` (the twins' targets ``hvnotes.sufficiency:complement`` and
``hvnotes.sufficiency:pgd_complement`` keep working).

``model`` may be a module or any callable mapping inputs to logits (Captum's ``forward_func``
convention); a module is switched to eval mode and restored, also when a check raises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.notions import (
    check_baseline,
    check_bounds,
    check_data_in_bounds,
    check_generator,
    check_keep,
    check_pgd,
    check_x,
)
from hvnotes.validation import check_input_dtype, evaluating


def _uniform(shape, lo: float, hi: float, like: Tensor, generator) -> Tensor:
    """U[lo, hi) of ``shape``, drawn on the generator's device, returned on ``like``'s."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=like.dtype)
    return (lo + (hi - lo) * u).to(like.device)


def complement(
    x: Tensor,
    keep: Tensor,
    mode: str,
    baseline: float | Tensor = 0.0,
    generator: torch.Generator | None = None,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    pool: Tensor | None = None,
) -> Tensor:
    """``(x_S; z_S̄)``: keep ``x`` where ``keep`` is True, fill the rest.

    Args:
        x: ``(N, *shape)``.
        keep: bool, broadcastable to ``x`` without changing its shape.
        mode: ``"baseline"`` fills with ``baseline`` (a number, or a tensor broadcastable to x);
            ``"probabilistic"`` fills with a draw from the input domain: uniform on ``bounds``
            independently per feature, or, when ``pool (M, *shape)`` is given, the pixels of a
            random training image (one per row).
        generator: for the probabilistic draw.

    Returns:
        a new tensor of ``x``'s shape; kept features are bit-for-bit those of ``x``.
    """
    x = check_x(x)
    keep = check_keep(x, keep)
    check_generator(generator)
    if mode == "baseline":
        check_baseline(baseline)
        z = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
        if z.ndim and torch.broadcast_shapes(z.shape, x.shape) != x.shape:
            raise ValueError(f"baseline of shape {tuple(z.shape)} does not broadcast to x")
        z = z.expand_as(x)
    elif mode == "probabilistic":
        if pool is None:
            lo, hi = check_data_in_bounds(x, bounds)
            z = _uniform(x.shape, lo, hi, x, generator)
        else:
            validation.check_tensor("pool", pool)
            if pool.shape[1:] != x.shape[1:]:
                raise ValueError(
                    f"pool must have shape (M, {tuple(x.shape[1:])}), got {tuple(pool.shape)}"
                )
            device = generator.device if generator is not None else pool.device
            idx = torch.randint(len(pool), (len(x),), generator=generator, device=device)
            z = pool[idx.to(pool.device)].to(x)
    elif mode == "robust":
        raise ValueError("mode='robust' needs the model: use pgd_complement(model, x, keep, ...)")
    else:
        raise ValueError(f"mode must be 'baseline' or 'probabilistic', got {mode!r}")
    return torch.where(keep, x, z)


def project(
    x_adv: Tensor, x: Tensor, keep: Tensor, eps: float, bounds: tuple[float, float] = (0.0, 1.0)
) -> Tensor:
    """The PGD projection: nearest point to ``x_adv`` that a robust complement may take.

    Clip to the ℓ∞ ball of radius ``eps`` around ``x``, then to ``bounds``, then put the kept
    features back to ``x`` exactly. All tensors ``(N, *shape)``; ``keep`` bool.
    """
    lo, hi = check_bounds(bounds)
    inside = torch.clamp(torch.min(torch.max(x_adv, x - eps), x + eps), lo, hi)
    return torch.where(check_keep(x, keep), x, inside)


def pgd_complement(
    model: nn.Module,
    x: Tensor,
    keep: Tensor,
    target: Tensor,
    eps: float,
    alpha: float,
    steps: int,
    generator: torch.Generator | None = None,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    track: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Projected gradient ascent on the complement: the robust filler ``(x_S; z_S̄)``.

    Random start ``U[-eps, eps]`` on ``S̄``; then ``steps`` times: a signed-gradient *ascent* step
    of size ``alpha`` on ``CE(model(x̃), target)``, projection onto the ℓ∞ ball of radius ``eps``
    around ``x`` and onto ``bounds``, and the kept features reset to ``x``. Returns the last
    iterate (detached). ``target (N,)`` should be the model's prediction on ``x``.

    With ``track=True`` also returns, per row, whether the prediction stayed ``target`` at every
    iterate, the start included ``(N,)``: robust sufficiency is "for all z", so any iterate
    that flips the class is a counterexample, not only the last.
    """
    x = check_x(x)
    keep = check_keep(x, keep)
    check_pgd(eps, alpha, steps)
    lo, hi = check_data_in_bounds(x, bounds)
    if not isinstance(target, Tensor) or target.shape != x.shape[:1]:
        raise ValueError(f"target must be a class-index Tensor of shape ({len(x)},)")
    validation.check_labels("target", target, n=len(x))
    check_generator(generator)
    check_input_dtype(model, x)
    if steps > 0:  # the classes a target may name: the model's output width
        with evaluating(model):
            width = _logits(model, x[:1]).shape[1]
        validation.check_labels("target", target, classes=width)
    x_adv = torch.where(keep, x, (x + _uniform(x.shape, -eps, eps, x, generator)).clamp(lo, hi))
    held = torch.ones(len(x), dtype=torch.bool, device=x.device)
    # the projection of `project`, its bounds computed once: the ball and the range intersected
    lower, upper = torch.clamp(x - eps, lo, hi), torch.clamp(x + eps, lo, hi)
    with evaluating(model), torch.enable_grad():
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            logits = model(x_adv)
            held &= logits.argmax(1) == target
            loss = F.cross_entropy(logits, target, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            step = x_adv.detach() + alpha * grad.sign()  # ascent: make the prediction change
            x_adv = torch.where(keep, x, torch.clamp(step, lower, upper))
        if track:
            held &= _predict(model, x_adv.detach()) == target
    return (x_adv.detach(), held) if track else x_adv.detach()


@torch.no_grad()
def _logits(model, x: Tensor) -> Tensor:
    """``model(x)``, checked: finite floating-point logits ``(N, C)`` (NaN logits would argmax to
    class 0 everywhere and look perfectly sufficient)."""
    return validation.check_logits("model", model(x), n=len(x))


@torch.no_grad()
def _predict(model, x: Tensor, batch_size: int = 2048) -> Tensor:
    """Predicted classes; the callers have already switched ``model`` to eval mode."""
    return torch.cat(
        [_logits(model, x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    )
