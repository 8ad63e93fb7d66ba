"""The AND-mask (Parascandolo et al., ICLR 2021): keep only the gradient components on which
every environment agrees.

Environments are stacked on the first axis: per-environment gradients have shape ``(E, ...)``.
"""

from __future__ import annotations

from torch import Tensor


def _check_env_grads(env_grads: Tensor) -> None:
    if not isinstance(env_grads, Tensor):
        raise TypeError(
            f"env_grads must be a Tensor of shape (E, ...), got {type(env_grads).__name__}"
        )
    if env_grads.ndim < 1 or env_grads.shape[0] < 1:
        raise ValueError(
            f"env_grads must have shape (E, ...) with E >= 1, got {tuple(env_grads.shape)}"
        )


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be a number in [0, 1], got {tau!r}")
    return float(tau)


def and_mask(env_grads: Tensor, tau: float) -> Tensor:
    """Agreement mask of per-environment gradients.

    Args:
        env_grads: ``(E, ...)``, one gradient per environment.
        tau: agreement threshold in [0, 1]; 0 keeps everything, 1 demands unanimous signs.

    Returns:
        float mask of shape ``...``: 1 where ``|mean_e sign(g_e)| >= tau``, else 0. ``sign(0) = 0``
        counts against agreement (an environment with no gradient does not vote for a direction).
    """
    _check_env_grads(env_grads)
    tau = _check_tau(tau)
    agreement = env_grads.sign().mean(dim=0).abs()
    return (agreement >= tau).to(env_grads.dtype)
