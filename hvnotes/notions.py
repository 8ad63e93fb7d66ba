"""The three notions of sufficiency and the checks of their arguments (notebook 04).

A *sufficient reason* for a prediction ``f(x)`` is a subset ``S`` of the input features such that
fixing ``x_S`` and filling the complement ``S̄`` some other way keeps the predicted class. How the
complement is filled is the *notion*:

* ``"baseline"``: a fixed value (0 = the MNIST background);
* ``"probabilistic"``: a draw from the input domain (uniform on the input range by default, or
  whole training images via ``pool=``), reported as the rate over ``n_draws`` draws;
* ``"robust"``: the worst case in an ℓ∞ ball of radius ``eps`` around ``x``, found by PGD.

Both SST training (:mod:`hvnotes.sst`) and the checker (:mod:`hvnotes.sufficiency`) validate their
arguments with the functions here; they compute nothing, so the two stay independent.

Shapes: inputs ``x`` are ``(N, *shape)``; a mask ``keep`` is a bool tensor broadcastable to
``x`` (usually the same shape); ``True`` = the feature is in ``S``.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from hvnotes import validation

NOTIONS = ("baseline", "probabilistic", "robust")


def check_notion(notion) -> str:
    if notion not in NOTIONS:
        raise ValueError(f"notion must be one of {NOTIONS}, got {notion!r}")
    return notion


def check_x(x) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise TypeError(
            f"x must be a float Tensor of shape (N, *shape), got "
            f"{type(x).__name__}{f' of shape {tuple(x.shape)}, {x.dtype}' if isinstance(x, Tensor) else ''}"
        )
    if len(x) == 0:
        raise ValueError(f"x must hold at least one row, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or inf values")
    return x


def check_baseline(baseline) -> None:
    values = baseline if isinstance(baseline, Tensor) else torch.as_tensor(float(baseline))
    if not torch.isfinite(values).all():
        raise ValueError(f"baseline must be finite, got {baseline!r}")


def check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def check_keep(x: Tensor, keep) -> Tensor:
    """``keep`` as a bool tensor of exactly ``x.shape`` (broadcasting may not change x's shape)."""
    if isinstance(keep, Tensor) and keep.dtype != torch.bool:
        raise TypeError(f"keep must be a bool Tensor, got {keep.dtype}")
    shape = tuple(x.shape)
    validation.check_mask(
        "keep", keep, x, f"pass a mask of shape {shape} or {shape[1:]}", broadcast="rows"
    )
    return keep.to(x.device).expand_as(x)


def check_bounds(bounds) -> tuple[float, float]:
    lo, hi = (float(b) for b in bounds)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    return lo, hi


def check_data_in_bounds(x: Tensor, bounds) -> tuple[float, float]:
    """``bounds`` as ``(low, high)``, refused when ``x`` has values outside them.

    The fills that draw from the input range (probabilistic, robust) take the range from
    ``bounds``, (0, 1) by default: right for images in [0, 1], silently wrong for standardised
    data, so data outside the bounds is an error that asks for the right ones.
    """
    lo, hi = check_bounds(bounds)
    x_lo, x_hi = x.min().item(), x.max().item()
    if x_lo < lo or x_hi > hi:
        raise ValueError(
            f"x has values in [{x_lo:.3g}, {x_hi:.3g}], outside bounds ({lo:g}, {hi:g}) (the input "
            "range the fill draws from and clamps to): pass bounds=(low, high) that contain the "
            "data, e.g. its range on the training set"
        )
    return lo, hi


def _real(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def check_pgd(eps, alpha, steps) -> None:
    if not _real(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if not _real(alpha) or alpha <= 0:
        raise ValueError(f"alpha (the PGD step) must be a finite number > 0, got {alpha!r}")
    try:
        validation.check_integer("steps", steps, low=0)
    except TypeError as err:
        raise ValueError(str(err)) from None
