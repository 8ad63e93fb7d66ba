"""Gradient descent from many starts on a landscape, plain or AND-masked, and where it lands
(notebook 01): the trajectories ``(steps + 1, N, d)`` and their landing sites among known minima.
Re-exported by :mod:`hvnotes.consistency`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from hvnotes.agreement import and_mask
from hvnotes.landscapes import LossFn, _as_numpy
from hvnotes.validation import check_number

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
    check_number("lr", lr, positive=True)
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
