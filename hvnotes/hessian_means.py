"""Arithmetic ("OR") and geometric ("AND") means of Hessians (Parascandolo et al., ICLR 2021,
Sec. 3 and Prop. 3): the pooled curvature against the curvature every environment shares.

Hessians are stacked ``(E, n, n)``, symmetric (positive definite for the geometric mean).
Re-exported by :mod:`hvnotes.consistency`.
"""

from __future__ import annotations

import numpy as np

from hvnotes.landscapes import _check_hessians


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
