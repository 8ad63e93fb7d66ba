"""Loss landscapes on a grid (notebook 01): the toy landscapes of two environments, the patchwork
network, grids, and the epsilon-components of a loss around a point.

Shapes: parameters ``theta`` ``(..., d)``; a landscape is ``(E, n_1, ..., n_d)``, each
environment's loss on one grid (``"ij"`` indexing). The score built on them is in
:mod:`hvnotes.consistency`, which re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from hvnotes.validation import check_number

#: ``(E, ...)`` losses of parameters ``(..., d)``.
LossFn = Callable[[Tensor], Tensor]


def _as_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    return arr


def _check_eps(eps) -> float:
    """``eps`` as a positive finite float (NumPy numbers and 0-d tensors are numbers)."""
    try:
        return check_number("eps", eps, positive=True)
    except TypeError as err:
        raise ValueError(f"{err} (a positive finite number)") from None


def _check_theta(theta: Tensor, d: int) -> None:
    if not isinstance(theta, Tensor):
        raise TypeError(f"theta must be a Tensor of shape (..., {d}), got {type(theta).__name__}")
    if theta.ndim < 1 or theta.shape[-1] != d:
        raise ValueError(f"theta must have shape (..., {d}), got {tuple(theta.shape)}")


def crossing_valleys(
    theta: Tensor, p: float = 3.0, width: float = 0.6, sigma: float = 1.3
) -> Tensor:
    """Two environments whose pooled loss has two zero-loss minima, only one of them shared.

    ``L_e(theta) = b(theta) * (1 - v_e(theta))`` with

    * a bowl both environments share, centred at the origin and saturating at 1:
      ``b = 1 - exp(-|theta|^2 / (2 sigma^2))``;
    * a private valley per environment, ``v_A = 1 / (1 + ((theta_1 - p) / width)^2)`` (a
      vertical line ``theta_1 = p``) and ``v_B`` the same in ``theta_2`` (a horizontal line).

    Environment A is fitted perfectly at the origin *and anywhere on its line*; so is B on its
    own line. The pooled loss ``(L_A + L_B) / 2`` is zero only at the origin ``C = (0, 0)``, a
    bowl in both environments, and at ``P = (p, p)``, where two unrelated lines happen to cross:
    P exists only after pooling (training on A alone lands on P with probability zero).

    Args:
        theta: ``(..., 2)``.

    Returns:
        ``(2, ...)``: the losses of environments A and B.
    """
    _check_theta(theta, 2)
    bowl = 1 - torch.exp(-(theta**2).sum(-1) / (2 * sigma**2))
    valley_a = 1 / (1 + ((theta[..., 0] - p) / width) ** 2)
    valley_b = 1 / (1 + ((theta[..., 1] - p) / width) ** 2)
    return torch.stack([bowl * (1 - valley_a), bowl * (1 - valley_b)])


def quadratic_losses(theta: Tensor, hessians) -> Tensor:
    """Quadratic environments sharing the minimum ``theta* = 0``: ``L_e = theta^T H_e theta / 2``.

    Args:
        theta: ``(..., n)``.
        hessians: ``(E, n, n)`` symmetric positive semi-definite matrices.

    Returns:
        ``(E, ...)``.
    """
    h = torch.as_tensor(_check_hessians(hessians), dtype=theta.dtype, device=theta.device)
    _check_theta(theta, h.shape[-1])
    return 0.5 * torch.einsum("...i,eij,...j->e...", theta, h, theta)


#: The paper's patchwork fit (App. A.1). The text prints theta_2 = -50, its figure -45; -45 puts
#: the first sigmoid's step in the middle of the ramp on [0.4, 0.5], as the construction intends.
PATCHWORK_THETA = (100.0, -45.0, 100.0, -75.0, 1.0, 1.0)


def patchwork_target(x: Tensor) -> Tensor:
    """The paper's piecewise-linear target on [0, 1]: 0, ramp to 1 on [.4, .5], 1, ramp to 2 on
    [.7, .8], 2. Same shape as ``x``."""
    return torch.clamp(10 * (x - 0.4), 0, 1) + torch.clamp(10 * (x - 0.7), 0, 1)


def patchwork_net(theta: Tensor, x: Tensor) -> Tensor:
    """Two sigmoid neurons: ``theta5 s(theta1 x + theta2) + theta6 s(theta3 x + theta4)``.

    Args:
        theta: ``(..., 6)``.
        x: ``(N,)``.

    Returns:
        ``(..., N)``.
    """
    _check_theta(theta, 6)
    t = [theta[..., i, None] for i in range(6)]
    return t[4] * torch.sigmoid(t[0] * x + t[1]) + t[5] * torch.sigmoid(t[2] * x + t[3])


SPLITS = ("halves", "interleaved")


def patchwork_losses(theta: Tensor, n_points: int = 200, split: str = "halves") -> Tensor:
    """Mean squared error of :func:`patchwork_net` in environments A and B.

    The inputs are ``n_points`` evenly spaced points on [0, 0.5) and ``n_points`` on [0.5, 1]
    (the same ``2 n_points`` inputs, so the same pooled loss, whatever the split).

    * ``split="halves"`` (the paper's App. A.1): A holds the inputs in [0, 0.5), B those in
      [0.5, 1]. The two environments never see the same inputs.
    * ``split="interleaved"``: A holds every other input over all of [0, 1], B the rest. Both
      environments see the whole range.

    Args:
        theta: ``(..., 6)``.

    Returns:
        ``(2, ...)``.
    """
    if not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2, got {n_points!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    _check_theta(theta, 6)
    dtype, device = theta.dtype, theta.device
    x = torch.cat(
        [
            torch.linspace(0, 0.5, n_points + 1, dtype=dtype, device=device)[:-1],
            torch.linspace(0.5, 1, n_points, dtype=dtype, device=device),
        ]
    )
    xs = [x[:n_points], x[n_points:]] if split == "halves" else [x[0::2], x[1::2]]
    return torch.stack(
        [((patchwork_net(theta, x) - patchwork_target(x)) ** 2).mean(-1) for x in xs]
    )


def fit_patchwork(theta0: Tensor, steps: int, lr: float) -> tuple[Tensor, Tensor]:
    """Fit :func:`patchwork_net` to the pooled data (A and B together) from many starts at once.

    Adam on the pooled loss ``(L_A + L_B) / 2`` (the same for either split), each start
    independent of the others.

    Args:
        theta0: ``(K, 6)`` starting parameters.

    Returns:
        ``(theta, pooled_loss)``: the fitted ``(K, 6)`` and their pooled losses ``(K,)``.
    """
    _check_theta(theta0, 6)
    if theta0.ndim != 2:
        raise ValueError(f"theta0 must have shape (K, 6), got {tuple(theta0.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    theta = theta0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        patchwork_losses(theta).mean(0).sum().backward()  # starts are independent
        optimizer.step()
    theta = theta.detach()
    with torch.no_grad():
        return theta, patchwork_losses(theta).mean(0)


def patchwork_slice(theta: Tensor, axes: Sequence, split: str = "halves") -> np.ndarray:
    """Both environments' losses on the slice through ``theta`` ``(6,)`` along the two output
    weights ``(theta5, theta6)`` (the other four parameters fixed at ``theta``'s values).

    Returns:
        ``(2, len(axes[0]), len(axes[1]))``, ``"ij"`` indexing as :func:`evaluate_on_grid`.
    """
    _check_theta(theta, 6)
    if theta.ndim != 1:
        raise ValueError(f"theta must have shape (6,), got {tuple(theta.shape)}")

    def losses(t: Tensor) -> Tensor:  # (..., 2) output weights -> (2, ...) losses
        full = theta.to(t.dtype).expand(*t.shape[:-1], 6).clone()
        full[..., 4:] = t
        return patchwork_losses(full, split=split)

    return evaluate_on_grid(losses, axes)


def evaluate_on_grid(loss_fn: LossFn, axes: Sequence) -> np.ndarray:
    """Evaluate ``loss_fn`` on the grid spanned by ``axes`` (``"ij"`` indexing).

    Args:
        loss_fn: maps ``(..., d)`` parameters to ``(E, ...)`` losses.
        axes: ``d`` one-dimensional coordinate arrays of lengths ``n_1, ..., n_d``.

    Returns:
        float64 array ``(E, n_1, ..., n_d)``.
    """
    axes = [torch.as_tensor(_as_numpy(a, "axes"), dtype=torch.float64) for a in axes]
    if not axes or any(a.ndim != 1 or len(a) < 2 for a in axes):
        raise ValueError("axes must be a sequence of 1-D coordinate arrays of length >= 2")
    theta = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    with torch.no_grad():
        return loss_fn(theta).cpu().numpy()


def nearest_index(axes: Sequence, theta) -> tuple[int, ...]:
    """Grid index ``(i, j, ...)`` of the grid point nearest to ``theta`` ``(d,)``."""
    theta = _as_numpy(theta, "theta").reshape(-1)
    if len(theta) != len(axes):
        raise ValueError(f"theta must have {len(axes)} coordinates, got {len(theta)}")
    return tuple(
        int(np.abs(_as_numpy(a, "axes") - t).argmin()) for a, t in zip(axes, theta, strict=True)
    )


def _component(loss: np.ndarray, star: tuple[int, ...], eps: float) -> np.ndarray:
    structure = ndimage.generate_binary_structure(loss.ndim, loss.ndim)
    labels, _ = ndimage.label(np.abs(loss - loss[star]) <= eps, structure=structure)
    return labels == labels[star]


def epsilon_component(env_losses, star, eps: float, env: int) -> np.ndarray:
    """``N^eps_{env, theta*}``: boolean mask ``(*grid)`` of the connected component containing
    ``theta*`` of ``{theta : |L_env(theta) - L_env(theta*)| <= eps}`` (clipped to the grid)."""
    losses = _as_numpy(env_losses, "env_losses")
    if losses.ndim < 2:
        raise ValueError(f"env_losses must have shape (E, *grid), got {tuple(losses.shape)}")
    if not isinstance(env, int) or not 0 <= env < losses.shape[0]:
        raise ValueError(f"env must be an int in [0, {losses.shape[0]}), got {env!r}")
    star = _check_star(star, losses.shape[1:])
    return _component(losses[env], star, _check_eps(eps))


def _check_hessians(hessians) -> np.ndarray:
    h = _as_numpy(hessians, "hessians")
    if h.ndim != 3 or h.shape[1] != h.shape[2] or h.shape[0] < 1:
        raise ValueError(f"hessians must have shape (E, n, n), got {tuple(h.shape)}")
    if not np.isfinite(h).all():
        raise ValueError("hessians must be finite (found NaN or inf)")
    scale = float(np.abs(h).max()) or 1.0  # relative checks: the score is scale-free
    if not np.allclose(h, h.transpose(0, 2, 1), atol=1e-10 * scale):
        raise ValueError("hessians must be symmetric matrices")
    if np.linalg.eigvalsh(h).min() < -1e-10 * scale:
        raise ValueError("hessians must be positive semi-definite (a minimum's curvature)")
    return h


def _check_star(star, grid: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(star, Tensor | np.ndarray):
        star = star.tolist()
    if isinstance(star, int | np.integer):
        star = (star,)
    try:
        star = tuple(star)
    except TypeError:
        raise ValueError(f"star must be a grid index: a tuple of {len(grid)} ints") from None
    if len(star) != len(grid) or not all(
        isinstance(i, int | np.integer) and not isinstance(i, bool) for i in star
    ):
        raise ValueError(f"star must be a grid index: a tuple of {len(grid)} ints, got {star!r}")
    if not all(0 <= i < n for i, n in zip(star, grid, strict=True)):
        raise ValueError(f"star {star} is outside the grid of shape {grid}")
    return tuple(int(i) for i in star)
