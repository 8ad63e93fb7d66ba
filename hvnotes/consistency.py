"""Consistency of minima (Parascandolo et al., ICLR 2021, section 2): the epsilon-inconsistency
score, the Hessian view of it, and the optimisers whose endpoints it judges.

Read top to bottom:

1. **Landscapes** on a 2-parameter grid. Every loss function takes parameters ``theta`` of shape
   ``(..., 2)`` (or ``(..., 6)`` for the patchwork network) and returns the per-environment losses
   stacked first: ``(E, ...)``. ``evaluate_on_grid`` turns one into an array ``(E, n1, n2)``.
2. **The score** ``inconsistency_score(env_losses, star, eps)`` on such a grid (connected
   components of the epsilon-sublevel set, with ``scipy.ndimage.label``), and its closed form for
   quadratic losses, ``quadratic_inconsistency(hessians, eps)``.
3. **Hessian means**: the arithmetic mean ("logical OR"), the geometric or Karcher mean ("logical
   AND") and the volume ratio ``det(arithmetic) / det(geometric)`` the paper reads as inconsistency.
4. **Optimisers**: gradient descent and AND-masked gradient descent from a cloud of starting
   points, trajectories returned, and the ILC estimate ``-mean I^eps(endpoint)``.

Grids use ``"ij"`` indexing: ``env_losses[e, i, j]`` is environment ``e``'s loss at
``theta = (axes[0][i], axes[1][j])``; transpose for ``plt.contourf(x, y, Z)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from hvnotes.andmask import and_mask

__all__ = [
    "PATCHWORK_THETA",
    "arithmetic_mean",
    "bound_constant",
    "crossing_valleys",
    "epsilon_component",
    "evaluate_on_grid",
    "fit_patchwork",
    "geometric_mean",
    "gradient_descent",
    "ilc",
    "inconsistency_score",
    "landing_shares",
    "landing_sites",
    "moved",
    "nearest_index",
    "patchwork_losses",
    "patchwork_net",
    "patchwork_slice",
    "patchwork_target",
    "plot_components",
    "plot_landscapes",
    "plot_paths",
    "quadratic_inconsistency",
    "quadratic_losses",
    "shuffled_mask",
    "volume_ratio",
]

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
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating | np.integer):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    return float(eps)


def _check_theta(theta: Tensor, d: int) -> None:
    if not isinstance(theta, Tensor):
        raise TypeError(f"theta must be a Tensor of shape (..., {d}), got {type(theta).__name__}")
    if theta.ndim < 1 or theta.shape[-1] != d:
        raise ValueError(f"theta must have shape (..., {d}), got {tuple(theta.shape)}")


# ---------------------------------------------------------------------------------------------
# 1. Landscapes
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# 2. The epsilon-inconsistency score
# ---------------------------------------------------------------------------------------------


def inconsistency_score(env_losses, star, eps: float, connected: bool = True) -> float:
    """The epsilon-inconsistency ``I^eps(theta*)`` of the paper's eq. (1), on a grid.

    For every ordered pair of environments ``(e, e')``, ``e != e'``: take ``N_e``, the connected
    component containing ``theta*`` of ``{theta : |L_e(theta) - L_e(theta*)| <= eps}`` (all the
    parameters environment ``e`` cannot tell apart from ``theta*``), and the largest
    ``|L_e'(theta) - L_e(theta*)|`` over it. The score is the largest of these.
    (Pairs with ``e = e'`` contribute at most ``eps`` and can never change the result.)

    Components are found with ``scipy.ndimage.label`` with full connectivity (diagonal
    neighbours touch). A component that is unbounded in parameter space (a flat valley) is
    **clipped to the grid**: the score is then the value on the grid, a lower bound of the true
    one, and grows with the grid. The grid must also be fine enough to resolve the
    ``eps``-sublevel set around ``theta*`` (small ``eps`` needs fine grids).

    ``connected=False`` drops the restriction to the component of ``theta*``: every grid point
    with ``|L_e(theta) - L_e(theta*)| <= eps`` counts, however far from ``theta*`` (a control: a
    distant valley of ``e`` then counts against a minimum it does not touch).

    Args:
        env_losses: ``(E, *grid)`` with ``E >= 2``: each environment's loss on one grid.
        star: grid index of ``theta*`` (a tuple of ``len(grid)`` ints).
        eps: tolerance > 0.
        connected: keep only the connected component containing ``theta*`` (the paper's
            definition; default).

    Returns:
        the score, a float ``>= 0``.
    """
    losses = _as_numpy(env_losses, "env_losses")
    if losses.ndim < 2 or losses.shape[0] < 2:
        raise ValueError(
            f"env_losses must have shape (E, *grid) with E >= 2, got {tuple(losses.shape)}"
        )
    if not np.isfinite(losses).all():
        raise ValueError("env_losses must be finite (found NaN or inf)")
    eps = _check_eps(eps)
    grid = losses.shape[1:]
    star = _check_star(star, grid)
    score = 0.0
    for e in range(losses.shape[0]):
        at_star = losses[e][star]
        if connected:
            component = _component(losses[e], star, eps)
        else:
            component = np.abs(losses[e] - at_star) <= eps
        for e2 in range(losses.shape[0]):
            if e2 != e:
                score = max(score, float(np.abs(losses[e2][component] - at_star).max()))
    return score


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


def quadratic_inconsistency(hessians, eps: float) -> float:
    """Closed form of ``I^eps(0)`` for quadratic losses ``L_e = theta^T H_e theta / 2``.

    Environment ``e``'s epsilon-region is the ellipsoid ``theta^T H_e theta <= 2 eps``; the most
    ``L_e'`` gets on it is ``eps * lambda_max(H_e^-1 H_e')`` (a generalised Rayleigh quotient).
    So ``I^eps = eps * max_{e != e'} lambda_max(H_e^-1 H_e')``; for diagonal Hessians this is
    ``eps * max_i max(l_i^A / l_i^B, l_i^B / l_i^A)`` (the paper's Prop. 3).
    If some ``H_e`` is flat (singular) in a direction where another ``H_e'`` curves, ``e``'s
    region is unbounded there while ``L_e'`` grows without limit: the score is ``inf``.

    Args:
        hessians: ``(E, n, n)`` with ``E >= 2``, symmetric positive semi-definite.
        eps: tolerance > 0.
    """
    h = _check_hessians(hessians)
    if h.shape[0] < 2:
        raise ValueError(f"hessians must have shape (E, n, n) with E >= 2, got {h.shape}")
    eps = _check_eps(eps)
    # "flat" is judged relative to the largest curvature of all environments, so the score does
    # not change when every Hessian is multiplied by the same constant (it is a ratio)
    tol = 1e-12 * float(np.abs(np.linalg.eigvalsh(h)).max())
    worst = 0.0
    for e in range(len(h)):
        vals, vecs = np.linalg.eigh(h[e])
        flat, curved = vecs[:, vals <= tol], vecs[:, vals > tol]
        # H_e^{-1/2} restricted to the directions where e curves at all
        whiten = curved / np.sqrt(vals[vals > tol])
        for e2 in range(len(h)):
            if e2 == e:
                continue
            if flat.shape[1] and np.abs(flat.T @ h[e2] @ flat).max() > tol:
                return float("inf")
            if curved.shape[1]:
                worst = max(worst, float(np.linalg.eigvalsh(whiten.T @ h[e2] @ whiten).max()))
    return eps * worst


# ---------------------------------------------------------------------------------------------
# 3. Arithmetic ("OR") and geometric ("AND") means of Hessians
# ---------------------------------------------------------------------------------------------


def _check_spd(hessians) -> np.ndarray:
    h = _check_hessians(hessians)
    if np.linalg.eigvalsh(h).min() <= 0:
        raise ValueError("hessians must be positive definite for the geometric mean")
    return h


def _sym_fn(m: np.ndarray, fn) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    return (vecs * fn(vals)) @ vecs.T


def arithmetic_mean(hessians) -> np.ndarray:
    """``(H_1 + ... + H_E) / E``: the pooled loss's curvature, a "logical OR" (a direction is
    steep if *any* environment is steep in it). ``(E, n, n) -> (n, n)``."""
    return _check_hessians(hessians).mean(axis=0)


def geometric_mean(hessians, tol: float = 1e-12, max_iter: int = 200) -> np.ndarray:
    """Karcher (Riemannian geometric) mean of SPD matrices: the ``X`` with
    ``sum_e log(X^-1/2 H_e X^-1/2) = 0``; a "logical AND" (a direction is steep only if *every*
    environment is). For commuting matrices it is ``exp(mean_e log H_e)``, for two matrices
    ``A # B = A^1/2 (A^-1/2 B A^-1/2)^1/2 A^1/2``. Computed by the fixed-point iteration
    ``X <- X^1/2 exp(mean_e log(X^-1/2 H_e X^-1/2)) X^1/2``. ``(E, n, n) -> (n, n)``."""
    h = _check_spd(hessians)
    x = h.mean(axis=0)
    for _ in range(max_iter):
        root = _sym_fn(x, np.sqrt)
        inv_root = _sym_fn(x, lambda v: 1 / np.sqrt(v))
        step = np.mean([_sym_fn(inv_root @ he @ inv_root, np.log) for he in h], axis=0)
        x = root @ _sym_fn(step, np.exp) @ root
        x = (x + x.T) / 2
        if np.linalg.norm(step) < tol:
            break
    return x


def volume_ratio(hessians) -> float:
    """``det(arithmetic mean) / det(geometric mean)`` (>= 1, equal to 1 iff all ``H_e`` agree).

    The paper's Fig. 3 reads this as inconsistency: for ``diag(.05, 1)`` and ``diag(1, .05)`` it
    is 5.5 ("the arithmetic mean is 5x bigger"). The ellipse ``theta^T H^-1 theta = 1`` has area
    ``pi sqrt(det H)``, so the area ratio of the two drawn ellipses is the square root.
    """
    h = _check_spd(hessians)
    return float(np.linalg.det(arithmetic_mean(h)) / np.linalg.det(geometric_mean(h)))


def bound_constant(a, b) -> np.ndarray:
    """``I^eps / (eps * ratio^2)`` for pairs of diagonal Hessians ``diag(a)``, ``diag(b)``.

    ``a``, ``b``: positive ``(M, n)`` (M pairs in n dimensions). With ``ratio`` the
    :func:`volume_ratio`, the paper's Prop. 3 claims this is at most 2. It is at most 4, and 4 is
    its supremum: with ``a_i / b_i = e^(2 t_i)`` it is ``max_i e^(2|t_i|) / prod_i cosh^2(t_i)``,
    which is ``4 / (1 + e^(-2t))^2 < 4`` for one coordinate ``t`` (the others equal) and smaller
    otherwise. Closed forms (:func:`quadratic_inconsistency` and :func:`volume_ratio` for
    diagonal matrices), vectorised over the pairs; returns ``(M,)``.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape or not (np.all(a > 0) and np.all(b > 0)):
        raise ValueError(f"a and b must be positive arrays of one shape, got {a.shape}, {b.shape}")
    score = np.maximum(a / b, b / a).max(axis=1)  # I^eps / eps
    ratio = np.prod((a + b) / 2 / np.sqrt(a * b), axis=1)  # det(OR) / det(AND)
    return score / ratio**2


# ---------------------------------------------------------------------------------------------
# 4. Optimisers and the ILC
# ---------------------------------------------------------------------------------------------


MASKS = ("and", "random", "nothing")


def shuffled_mask(mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A random mask that keeps exactly as many entries as ``mask``: its entries permuted.

    The null twin of an agreement mask: the same kept fraction, step by step, with *which*
    components are kept decided by chance instead of by the environments' agreement.

    Args:
        mask: ``(...)`` 0/1 float mask.
        generator: a ``torch.Generator`` (on the CPU) for the permutation.

    Returns:
        a mask of the same shape, dtype and device, with the same number of ones.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a Tensor, got {type(mask).__name__}")
    flat = mask.reshape(-1)
    order = torch.randperm(flat.numel(), generator=generator).to(flat.device)
    return flat[order].reshape(mask.shape)


def gradient_descent(
    loss_fn: LossFn,
    theta0: Tensor,
    steps: int,
    lr: float,
    tau: float | None = None,
    weight_decay: float = 0.0,
    mask: str = "and",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Full-batch gradient descent on the pooled loss from many starting points at once.

    ``tau=None``: plain GD, ``theta <- theta - lr * (mean_e grad L_e + wd * theta)``.
    ``tau`` in [0, 1]: masked GD, the mean gradient is multiplied per point and coordinate by

    * ``mask="and"``: ``hvnotes.andmask.and_mask`` of the per-environment gradients;
    * ``mask="random"``: the same AND-mask with its entries shuffled over all points and
      coordinates (:func:`shuffled_mask`, drawn from ``generator``): a random mask that keeps as
      many components as the AND-mask at every step;
    * ``mask="nothing"``: zeros, a mask that keeps nothing (only weight decay moves ``theta``).

    Weight decay is applied after the mask, as in the paper's code: masked coordinates still decay.

    Args:
        loss_fn: maps ``(N, d)`` parameters to ``(E, N)`` losses (points are independent).
        theta0: ``(N, d)`` starting points.

    Returns:
        trajectories ``(steps + 1, N, d)`` (detached; ``[0]`` is ``theta0``, ``[-1]`` the endpoints).
    """
    if not isinstance(theta0, Tensor) or theta0.ndim != 2:
        raise ValueError("theta0 must be a Tensor of shape (N, d)")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if tau is not None and not 0 <= tau <= 1:
        raise ValueError(f"tau must be None (plain GD) or in [0, 1], got {tau!r}")
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    theta = theta0.detach().clone()
    path = [theta]
    for _ in range(steps):
        theta = theta.clone().requires_grad_(True)
        losses = loss_fn(theta)
        if losses.ndim != 2 or losses.shape[1] != theta.shape[0]:
            raise ValueError(f"loss_fn must return (E, N) losses, got {tuple(losses.shape)}")
        # points are independent, so d(sum_n L_e[n]) / d theta holds every point's gradient
        env_grads = torch.stack(
            [torch.autograd.grad(loss.sum(), theta, retain_graph=True)[0] for loss in losses]
        )  # (E, N, d)
        step = env_grads.mean(dim=0)
        if tau is not None:
            if mask == "nothing":
                keep = torch.zeros_like(step)
            else:
                keep = and_mask(env_grads, tau)
                if mask == "random":
                    keep = shuffled_mask(keep, generator)
            step = step * keep
        theta = (theta - lr * (step + weight_decay * theta)).detach()
        path.append(theta)
    return torch.stack(path)


def moved(loss_fn: LossFn, offset) -> LossFn:
    """The landscape ``loss_fn`` moved by ``offset``: ``theta -> loss_fn(theta - offset)``.

    ``offset`` is ``(d,)``, or ``(N, d)`` to move each of ``N`` points' landscape by its own
    offset (several moved copies run in one call of :func:`gradient_descent`).
    """
    offset = torch.as_tensor(_as_numpy(offset, "offset"))

    def loss(theta: Tensor) -> Tensor:
        return loss_fn(theta - offset.to(dtype=theta.dtype, device=theta.device))

    return loss


def landing_sites(endpoints, minima, radius: float) -> np.ndarray:
    """Index of the minimum each endpoint lies within ``radius`` of, or -1 if none.

    Args:
        endpoints: ``(N, d)``; minima: ``(K, d)``.

    Returns:
        int array ``(N,)``.
    """
    pts, mins = _as_numpy(endpoints, "endpoints"), _as_numpy(minima, "minima")
    dist = np.linalg.norm(pts[:, None, :] - mins[None, :, :], axis=-1)
    return np.where(dist.min(axis=1) <= radius, dist.argmin(axis=1), -1)


def landing_shares(endpoints, minima, radius: float, names: Sequence[str]) -> dict[str, float]:
    """Share of endpoints within ``radius`` of each minimum, and of the rest ("elsewhere").

    Args:
        endpoints: ``(N, d)``; minima: ``(K, d)``; names: ``K`` names of the minima.

    Returns:
        ``{"in <name>": share, ..., "elsewhere": share}`` (shares sum to 1).
    """
    if len(names) != len(_as_numpy(minima, "minima")):
        raise ValueError(f"names must name each of the {len(minima)} minima, got {names!r}")
    sites = landing_sites(endpoints, minima, radius)
    shares = {f"in {n}": float(np.mean(sites == k)) for k, n in enumerate(names)}
    return shares | {"elsewhere": float(np.mean(sites == -1))}


def ilc(env_losses, axes: Sequence, endpoints, eps: float) -> tuple[float, np.ndarray]:
    """Invariant Learning Consistency estimate, eq. (2): ``-mean_n I^eps(endpoint_n)``.

    Each endpoint is scored at its nearest grid point (scores are cached per grid point).

    Args:
        env_losses: ``(E, n_1, ..., n_d)`` on the grid ``axes``.
        endpoints: ``(N, d)`` where an optimiser stopped from ``N`` random starts.

    Returns:
        ``(ilc, scores)`` with ``scores`` ``(N,)`` the inconsistency of each endpoint.
    """
    pts = _as_numpy(endpoints, "endpoints")
    cache: dict[tuple[int, ...], float] = {}
    scores = []
    for pt in pts:
        idx = nearest_index(axes, pt)
        if idx not in cache:
            cache[idx] = inconsistency_score(env_losses, idx, eps)
        scores.append(cache[idx])
    scores = np.asarray(scores)
    return -float(scores.mean()), scores


# ---------------------------------------------------------------------------------------------
# 5. Figures (matplotlib is imported only here)
# ---------------------------------------------------------------------------------------------

FLOOR = 1e-3  # losses are shown as log10(loss + FLOOR): zero-loss minima stay visible


def plot_landscapes(env_losses, axes, names=("A", "B"), minima=None, labels=("C", "P")):
    """One panel per environment plus the pooled (mean) loss, as ``log10(loss + 1e-3)``.

    Args:
        env_losses: ``(E, n1, n2)`` on ``axes`` (``"ij"`` indexing).
        minima: optional ``(K, 2)`` points to mark, named by ``labels``.

    Returns:
        the ``Figure``.
    """
    import matplotlib.pyplot as plt

    losses = _as_numpy(env_losses, "env_losses")
    panels = [*losses, losses.mean(axis=0)]
    titles = [f"environment {n}: $L_{{{n}}}$" for n in names] + ["pooled: mean over environments"]
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), sharey=True)
    vmin, vmax = np.log10(FLOOR), np.log10(losses.max() + FLOOR)
    for ax, z, title in zip(axs, panels, titles, strict=True):
        im = ax.pcolormesh(axes[0], axes[1], np.log10(z + FLOOR).T, vmin=vmin, vmax=vmax)
        ax.set(title=title, xlabel=r"$\theta_1$", aspect="equal")
        ax.grid(False)
        for k, m in enumerate([] if minima is None else minima):
            ax.plot(*m, "o", mfc="none", mec="w", ms=12, mew=2)
            ax.annotate(labels[k], m, xytext=(8, 8), textcoords="offset points", color="w")
    axs[0].set_ylabel(r"$\theta_2$")
    fig.colorbar(im, ax=axs, label=r"$\log_{10}(\mathrm{loss} + 10^{-3})$", shrink=0.9)
    return fig


def plot_components(env_losses, axes, stars, eps, names=("A", "B"), ax=None):
    """For each environment ``e`` (one panel each) and each ``theta*`` in ``stars``: the component
    ``N^eps_e`` coloured by how far the *other* environment's loss moves on it,
    ``|L_e'(theta) - L_e(theta*)|`` (two environments), over contour lines of ``L_e``."""
    import matplotlib.pyplot as plt

    losses = _as_numpy(env_losses, "env_losses")
    if losses.shape[0] != 2:
        raise ValueError("plot_components draws two environments: env_losses must be (2, n1, n2)")
    fig, axs = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    vmax = float(losses.max())  # one colour scale for both panels
    for e, ax in enumerate(axs):
        shown = np.full(losses.shape[1:], np.nan)
        for star in stars:
            comp = epsilon_component(losses, star, eps, e)
            shown[comp] = np.abs(losses[1 - e][comp] - losses[e][star])
        ax.contour(axes[0], axes[1], losses[e].T, levels=8, colors="0.6", linewidths=0.6)
        im = ax.pcolormesh(axes[0], axes[1], shown.T, vmin=0, vmax=vmax, cmap="magma")
        ax.set(
            title=f"$N^\\varepsilon_{{{names[e]}}}$ coloured by $|L_{{{names[1 - e]}}} - "
            f"L_{{{names[e]}}}(\\theta^*)|$",
            xlabel=r"$\theta_1$",
            aspect="equal",
        )
        ax.grid(False)
    axs[0].set_ylabel(r"$\theta_2$")
    label = r"$|L_{e'}(\theta) - L_e(\theta^*)|$ on $N^\varepsilon_e$"
    fig.colorbar(im, ax=axs, label=label, shrink=0.9)
    return fig


def plot_paths(ax, paths, sites, colors=("tab:blue", "tab:red"), stalled="0.5", every=1):
    """Draw trajectories ``(T, N, 2)`` on ``ax``: thin lines, starts as small circles, endpoints
    coloured by landing site (``sites`` from :func:`landing_sites`; -1 = ``stalled`` colour)."""
    paths = _as_numpy(paths, "paths")[:, ::every]
    sites = np.asarray(sites)[::every]
    for n in range(paths.shape[1]):
        color = colors[sites[n]] if sites[n] >= 0 else stalled
        ax.plot(paths[:, n, 0], paths[:, n, 1], color="w", lw=0.5, alpha=0.6)
        ax.plot(*paths[0, n], "o", ms=3, mfc="none", mec="w", mew=0.6)
        ax.plot(*paths[-1, n], "o", ms=6, color=color, mec="k", mew=0.5)
