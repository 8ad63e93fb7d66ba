"""Random gradients (Parascandolo et al., ICLR 2021, Prop. 2): how fast the AND-masked update
vanishes as environments are added, when the environments' gradient signs are coins.

:func:`keep_probability` and :func:`pass_probability` are closed forms; :func:`random_gradient_norms`
measures the averaged and the masked update of i.i.d. Gaussian gradients. Re-exported by
:mod:`hvnotes.andmask`.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from hvnotes import seeding, validation
from hvnotes.agreement import masked_gradient, required_agreement
from hvnotes.validation import (
    check_positive_int,
)


def keep_probability(n_envs: int, tau: float) -> float:
    """Probability that a component passes the AND-mask when each of ``n_envs`` signs is a fair
    coin: ``2 * 2^-E * sum_{j >= t} C(E, j)`` over agreeing counts with ``|2j - E| >= tau E``."""
    n_envs = check_positive_int("n_envs", n_envs)
    needed = required_agreement(tau, n_envs)
    return sum(math.comb(n_envs, j) for j in range(n_envs + 1) if abs(2 * j - n_envs) >= needed) / (
        2**n_envs
    )


def pass_probability(n_envs: int, tau: float, p_agree: float) -> float:
    """Probability that a component passes the AND-mask when each environment's gradient sign
    is, independently, the component's true sign with probability ``p_agree`` (never zero):
    ``sum_j C(E, j) p^j (1 - p)^(E - j)`` over ``j`` right signs with ``|2j - E| >= tau E``.

    ``p_agree = 0.5`` is :func:`keep_probability` (a shortcut weight with no common sign); a
    weight the mechanism moves, with per-example signal-to-noise ``s``, has about
    ``p_agree = Phi(sqrt(B) * s)`` for a batch of ``B`` examples per environment.
    """
    n_envs = check_positive_int("n_envs", n_envs)
    try:
        p_agree = validation.check_number("p_agree", p_agree, low=0.0, high=1.0)
    except TypeError as err:
        raise ValueError(f"{err} (a probability in [0, 1])") from None
    needed = required_agreement(tau, n_envs)
    return sum(
        math.comb(n_envs, j) * p_agree**j * (1 - p_agree) ** (n_envs - j)
        for j in range(n_envs + 1)
        if abs(2 * j - n_envs) >= needed
    )


def random_gradient_norms(
    env_counts, tau: float, dim: int = 3000, trials: int = 5, seed: int | None = None
) -> pd.DataFrame:
    """Squared norms of the averaged vs AND-masked update of i.i.d. ``N(0, I_dim)`` env gradients.

    Returns a DataFrame with columns ``envs``, ``mean_sq_norm`` (``E ||mean_e g_e||^2``,
    theory ``dim / envs``) and ``masked_sq_norm`` (``E ||mask * mean_e g_e||^2``), averaged over
    ``trials`` draws.
    """
    generator = seeding.generator(seed)
    rows = []
    for n_envs in env_counts:
        g = torch.randn(trials, n_envs, dim, generator=generator, dtype=torch.float64)
        mean = g.mean(dim=1)
        masked = torch.stack([masked_gradient(g[i], tau) for i in range(trials)])
        rows.append(
            {
                "envs": int(n_envs),
                "mean_sq_norm": mean.pow(2).sum(dim=1).mean().item(),
                "masked_sq_norm": masked.pow(2).sum(dim=1).mean().item(),
            }
        )
    return pd.DataFrame(rows)
