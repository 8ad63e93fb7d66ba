"""Consistency of minima (Parascandolo et al., ICLR 2021, section 2): the epsilon-inconsistency
score of a minimum, and the ILC of an optimiser's endpoints.

This module holds the score: ``inconsistency_score(env_losses, star, eps)`` on a grid (connected
components of the epsilon-sublevel set, with ``scipy.ndimage.label``), its closed form for
quadratic losses, ``quadratic_inconsistency(hessians, eps)``, and the ILC estimate
``-mean I^eps(endpoint)``. The ideas it rests on have modules of their own, and every name is
re-exported here (``consistency.gradient_descent`` and the twins' ``hvnotes.consistency:...``
targets keep working):

1. :mod:`hvnotes.landscapes`: **landscapes** on a 2-parameter grid. Every loss function takes
   parameters ``theta`` of shape ``(..., 2)`` (or ``(..., 6)`` for the patchwork network) and
   returns the per-environment losses stacked first: ``(E, ...)``. ``evaluate_on_grid`` turns one
   into an array ``(E, n1, n2)``; ``epsilon_component`` is the component the score looks at.
2. :mod:`hvnotes.hessian_means`: the arithmetic mean ("logical OR"), the geometric or Karcher
   mean ("logical AND") and the volume ratio ``det(arithmetic) / det(geometric)`` the paper reads
   as inconsistency.
3. :mod:`hvnotes.descent`: gradient descent and AND-masked gradient descent from a cloud of
   starting points, trajectories returned, and where they land.
4. :mod:`hvnotes.plot.landscapes`: the figures.

Grids use ``"ij"`` indexing: ``env_losses[e, i, j]`` is environment ``e``'s loss at
``theta = (axes[0][i], axes[1][j])``; transpose for ``plt.contourf(x, y, Z)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hvnotes.andmask import and_mask  # noqa: F401  (re-exported: its old home here)
from hvnotes.descent import (  # noqa: F401  (re-exported: their old home)
    MASKS,
    gradient_descent,
    landing_shares,
    landing_sites,
    moved,
    shuffled_mask,
)
from hvnotes.hessian_means import (  # noqa: F401  (re-exported: their old home)
    _check_spd,
    _sym_fn,
    arithmetic_mean,
    bound_constant,
    geometric_mean,
    volume_ratio,
)
from hvnotes.landscapes import (  # noqa: F401  (re-exported: their old home)
    PATCHWORK_THETA,
    SPLITS,
    LossFn,
    _as_numpy,
    _check_eps,
    _check_hessians,
    _check_star,
    _check_theta,
    _component,
    crossing_valleys,
    epsilon_component,
    evaluate_on_grid,
    fit_patchwork,
    nearest_index,
    patchwork_losses,
    patchwork_net,
    patchwork_slice,
    patchwork_target,
    quadratic_losses,
)
from hvnotes.plot.landscapes import (  # noqa: F401  (re-exported: their old home)
    FLOOR,
    plot_components,
    plot_landscapes,
    plot_paths,
)
from hvnotes.validation import check_number  # noqa: F401

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


# ---------------------------------------------------------------------------------------------
# The epsilon-inconsistency score
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
# The ILC: the score of where an optimiser lands
# ---------------------------------------------------------------------------------------------


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
