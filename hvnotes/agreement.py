"""The AND-mask and its relatives (Parascandolo et al., ICLR 2021): pure functions of a stack of
per-environment gradients ``(E, ...)``.

:func:`and_mask` keeps a component where the environments' gradient signs agree well enough
(``|mean_e sign(g_e)| >= tau``, compared on integer sign counts by :func:`agreement_mask`);
:func:`masked_gradient` combines the environments' gradients through it (arithmetic or geometric
mean, or the soft :func:`sand_mask`); :func:`random_mask_like` / :func:`random_mask` are its null
twins (as many components kept, at random positions). Training with the mask is in
:mod:`hvnotes.andmask`, which re-exports every name here.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from hvnotes import validation
from hvnotes.validation import (
    check_positive_int,
)

#: ``"random"`` is the AND-mask's null twin: as many components kept per tensor as the AND-mask
#: keeps, at random positions (sign agreement removed, sparsity kept).
METHODS = ("and", "geom", "sand", "random")


def _check_env_grads(env_grads: Tensor) -> None:
    if not isinstance(env_grads, Tensor):
        raise TypeError(
            f"env_grads must be a Tensor of shape (E, ...), got {type(env_grads).__name__}"
        )
    if env_grads.ndim < 1 or env_grads.shape[0] < 1:
        raise ValueError(
            f"env_grads must have shape (E, ...) with E >= 1, got {tuple(env_grads.shape)}"
        )
    if not env_grads.is_floating_point():
        raise TypeError(f"env_grads must be a floating-point Tensor, got {env_grads.dtype}")
    if not torch.isfinite(env_grads).all():  # sign(NaN) = 0 would silently veto a component
        raise ValueError("env_grads holds NaN or inf values: the mask would be meaningless")


def _check_tau(tau) -> float:
    """``tau`` as a float in [0, 1]; NumPy numbers and 0-d tensors are numbers. A value that is
    not a number at all (a string, None, a bool) is a ``ValueError`` too, as it always was."""
    try:
        return validation.check_number("tau", tau, low=0.0, high=1.0)
    except TypeError as err:
        raise ValueError(f"{err} (a number in [0, 1])") from None


def _check_flag(name: str, value) -> bool:
    """A real bool (``rescale="no"`` is truthy, so it is refused rather than obeyed)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _need_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            'method="random" draws the positions of its mask: pass generator=torch.Generator()'
        )
    return generator


def required_agreement(tau: float, n_envs: int) -> int:
    """Smallest ``|sum_e sign(g_e)|`` that passes ``|mean_e sign(g_e)| >= tau`` with ``n_envs`` envs.

    The mask compares integer sign counts, so ``tau = k / E`` is exact: ``0.28 * 25`` is
    ``7.000000000000001`` in floating point, and ``0.6`` read back from float32 is
    ``0.6000000238``; we forgive a rounding of ``tau`` up to 5e-8 (float32 rounds a number in
    [0, 1] by at most 2^-25, about 3e-8), far below the ``1 / E`` between two agreements.
    """
    tau = _check_tau(tau)
    n_envs = check_positive_int("n_envs", n_envs)
    return max(0, math.ceil((tau - 5e-8) * n_envs))


def _sign_count(env_grads: Tensor) -> Tensor:
    """``sum_e sign(g_e)`` (exact: integer values in floating point), shape ``...``."""
    return env_grads.sign().sum(dim=0)


def _rescale(update: Tensor, kept_fraction: Tensor) -> Tensor:
    """``update / kept_fraction``, and 0 (never NaN or inf) when nothing is kept."""
    safe = kept_fraction.clamp_min(torch.finfo(update.dtype).tiny)
    return torch.where(kept_fraction > 0, update / safe, torch.zeros_like(update))


def agreement_mask(sign_count: Tensor, n_envs: int, tau: float) -> Tensor:
    """The AND-mask from sign counts: 1 where ``|sign_count| >= required_agreement(tau, n_envs)``.

    Every AND-masked update of this module (:func:`and_mask`, :func:`masked_gradient`,
    :func:`and_mask_step` on either path) takes its mask from here, so the null twins of
    ``make falsify`` replace the mask in one place.

    Args:
        sign_count: ``sum_e sign(g_e)``, any shape (integer values in floating point).
        n_envs: the number of environments ``E`` that voted.
        tau: agreement threshold in [0, 1].

    Returns:
        float mask of ``sign_count``'s shape and dtype.
    """
    needed = required_agreement(tau, n_envs)
    return (sign_count.abs() >= needed).to(sign_count.dtype)


def random_mask_like(mask: Tensor, generator: torch.Generator) -> Tensor:
    """The AND-mask's null twin: ``mask``'s entries at random positions.

    Keeps exactly as many components as ``mask`` (the same kept fraction, so rescaling and
    sparsity are the same) but chooses them without looking at any gradient: what it removes is
    sign agreement. ``generator`` must live on ``mask``'s device (CPU for a CPU mask).
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    order = torch.randperm(mask.numel(), generator=generator, device=generator.device)
    return mask.flatten()[order.to(mask.device)].view_as(mask)


def random_mask(like: Tensor, fraction: float, generator: torch.Generator) -> Tensor:
    """A mask of ``like``'s shape and dtype keeping ``round(fraction * numel)`` components at random
    positions: the null twin with a *fixed* kept fraction (for instance the AND-mask's average)."""
    fraction = _check_fraction(fraction)
    mask = torch.zeros(like.numel(), dtype=like.dtype, device=like.device)
    mask[: round(fraction * like.numel())] = 1
    return random_mask_like(mask.view_as(like), generator)


def _check_fraction(fraction) -> float:
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not 0 <= fraction <= 1
    ):
        raise ValueError(f"a kept fraction must be a number in [0, 1], got {fraction!r}")
    return float(fraction)


def _fraction_for(keep, name: str) -> float | None:
    """``keep`` (None, one fraction, or {parameter name: fraction}) for parameter ``name``."""
    if keep is None or isinstance(keep, numbers.Real):
        return keep
    if not isinstance(keep, Mapping) or name not in keep:
        raise ValueError(f"keep must be a fraction or a mapping with an entry for {name!r}")
    return keep[name]


def _twin_mask(mask: Tensor, generator, fraction: float | None) -> Tensor:
    """The random twin of ``mask``: its count at random positions, or a fixed ``fraction``."""
    generator = _need_generator(generator)
    if fraction is None:
        return random_mask_like(mask, generator)
    return random_mask(mask, fraction, generator)


def and_mask(env_grads: Tensor, tau: float) -> Tensor:
    """Agreement mask of per-environment gradients.

    Args:
        env_grads: ``(E, ...)``, one gradient per environment.
        tau: agreement threshold in [0, 1]; 0 keeps everything, 1 demands unanimous signs.

    Returns:
        float mask of shape ``...``: 1 where ``|mean_e sign(g_e)| >= tau``, else 0. ``sign(0) = 0``
        counts against agreement (an environment with no gradient does not vote for a direction).
        The comparison is done on integer sign counts, so with ``E`` environments the mask only
        changes at ``tau = k / E``: the attainable agreements are ``|E - 2j| / E``, steps of
        ``2 / E``.
    """
    _check_env_grads(env_grads)
    return agreement_mask(_sign_count(env_grads), env_grads.shape[0], tau)


def _combine(
    env_grads: Tensor,
    tau: float,
    method: str,
    k: float,
    mean: Tensor | None = None,
    generator: torch.Generator | None = None,
    keep: float | None = None,
) -> tuple[Tensor, Tensor]:
    """(mask, combined update) before any rescaling; ``mean`` may be given if known exactly."""
    mean = env_grads.mean(dim=0) if mean is None else mean
    if method == "sand":
        mask = sand_mask(env_grads, tau, k)
        return mask, mask * mean
    mask = and_mask(env_grads, tau)
    if method == "random":
        mask = _twin_mask(mask, generator, keep)
    if method in ("and", "random"):
        return mask, mask * mean
    # geometric mean of magnitudes, computed in log space; sign of the arithmetic mean
    magnitude = torch.exp(torch.log(env_grads.abs() + 1e-10).mean(dim=0))
    return mask, mask * torch.sign(mean) * magnitude


def masked_gradient(
    env_grads: Tensor,
    tau: float,
    method: str = "and",
    rescale: bool = False,
    *,
    k: float = 10.0,
    generator: torch.Generator | None = None,
    keep: float | None = None,
) -> Tensor:
    """Combine per-environment gradients into one update direction.

    Args:
        env_grads: ``(E, ...)``.
        tau: agreement threshold in [0, 1] (see :func:`and_mask`).
        method: ``"and"``: ``mask * mean_e g_e``; ``"geom"``: ``mask * sign(mean_e g_e) *
            exp(mean_e log(|g_e| + 1e-10))`` (the geometric mean of the magnitudes);
            ``"sand"``: ``sand_mask(env_grads, tau, k) * mean_e g_e`` (a soft mask);
            ``"random"``: the null twin, ``random_mask_like(and_mask(env_grads, tau)) *
            mean_e g_e`` (as many components as the AND-mask keeps, at random positions).
        rescale: multiply by ``1 / kept_fraction`` (the mean of the mask over this tensor), so a
            sparse update keeps its size; 0 when nothing is kept, never NaN.
        k: steepness of the SAND-mask (only used by ``method="sand"``).
        generator: draws the random mask's positions (needed by ``method="random"`` only).
        keep: ``method="random"`` only: a fixed kept fraction instead of the AND-mask's count.

    Returns:
        the combined gradient, shape ``...``. ``tau = 0, method="and"`` is the plain mean exactly.
    """
    _check_env_grads(env_grads)
    _check_tau(tau)
    _check_method(method)
    _check_flag("rescale", rescale)
    mask, update = _combine(env_grads, tau, method, k, generator=generator, keep=keep)
    return _rescale(update, mask.mean()) if rescale else update


def sand_mask(env_grads: Tensor, tau: float, k: float) -> Tensor:
    """The smoothed AND-mask (SAND-mask, Shahtalebi et al. 2021, as in DomainBed).

    ``max(0, tanh(k * (|mean_e sign(g_e)| - tau) / var_e(g_e)))``: a soft mask in [0, 1) that is
    large where signs agree *and* the environments' gradients have similar sizes (small
    unbiased variance over environments). A zero or undefined variance (one environment) is
    replaced by 1e-17, so the mask there is a hard step; ``tau >= 1`` gives an all-zero mask.

    Args:
        env_grads: ``(E, ...)``.
        tau: agreement threshold in [0, 1].
        k: positive steepness; large ``k`` approaches the hard AND-mask.

    Returns:
        float mask of shape ``...``.
    """
    _check_env_grads(env_grads)
    tau = _check_tau(tau)
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not k > 0 or math.isinf(k):
        raise ValueError(f"k must be a positive finite number, got {k!r}")
    if tau >= 1:
        warnings.warn(
            "sand_mask with tau >= 1 is zero everywhere (|mean sign| - tau <= 0): nothing "
            "will be learned; use tau < 1",
            stacklevel=2,
        )
    if not torch.isfinite(env_grads).all():
        raise ValueError("env_grads holds NaN or inf values: the mask would be meaningless")
    n_envs = env_grads.shape[0]
    agreement = _sign_count(env_grads).abs() / n_envs
    if n_envs > 1:
        var = env_grads.var(dim=0, unbiased=True)
    else:
        var = torch.zeros_like(env_grads[0])
    var = torch.nan_to_num(var, nan=1e-17).clamp_min(1e-17)
    mask = torch.tanh(k * (agreement - tau) / var).clamp_min(0.0)
    return torch.nan_to_num(mask, nan=0.0)
