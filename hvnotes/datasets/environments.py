"""Environments for the AND-mask (notebook 02): the linear toy, spirals with per-environment
shortcuts, and digits with random labels (one environment per example)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from hvnotes.datasets.images import (
    _check_positive_int,
    _to_device,
    load_digits,
)
from hvnotes.seeding import resolve_seed
from hvnotes.validation import check_number

# === Notebook 02: AND-mask data (linear toy, spirals + shortcuts, random-label digits) ===
# Environment-stacked: training inputs ``(E, N, ...)``, N examples of each of E environments.


def linear_toy(
    n_envs: int = 4,
    shared: float = 0.1,
    scale: float = 3.0,
    noise: float = 0.0,
    seed: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The AND-mask paper's linear-regression toy: each environment is ONE data point.

    Environment ``e`` has input ``scale * [onehot(e), shared]``: a strong private feature that
    only it has, and a weak feature that all share; every target is 1. So ``theta_e = 1/scale``
    fits env ``e`` alone, while ``theta_shared = 1 / (scale * shared)`` fits them all.

    Args:
        noise: if > 0, adds ``U(-noise, noise)`` to the private features (the zeros become small
            numbers, so every environment has an opinion about every private weight).

    Returns:
        ``x`` ``(E, 1, E + 1)`` and ``y`` ``(E, 1, 1)``, float32.
    """
    n_envs = _check_positive_int("n_envs", n_envs)
    check_number("shared", shared)
    check_number("scale", scale, positive=True)  # scale 0 would be an all-zero toy
    check_number("noise", noise, low=0.0)
    x = torch.zeros(n_envs, n_envs + 1, dtype=torch.float64)
    x[:, :n_envs] = torch.eye(n_envs, dtype=torch.float64)
    if noise > 0:
        gen = torch.Generator().manual_seed(resolve_seed(seed))
        x[:, :n_envs] += (
            2 * torch.rand(n_envs, n_envs, generator=gen, dtype=torch.float64) - 1
        ) * noise
    x[:, n_envs] = shared
    x = (scale * x).float().unsqueeze(1)
    return x, torch.ones(n_envs, 1, 1)


class SpiralEnvs(NamedTuple):
    """Spirals + per-environment shortcuts. Features: 2 mechanism (spiral) coordinates, then
    ``shortcut_dims`` shortcut coordinates. Labels int64 in {0, 1}.

    ``x_train`` ``(E, N, 2 + d_S)``, ``y_train`` ``(E, N)``; ``x_test`` ``(M, 2 + d_S)``,
    ``y_test`` ``(M,)`` with a fresh shortcut vector for every test example.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    to = _to_device


def _spiral_points(labels: np.ndarray, revolutions: float, noise: float, rng) -> np.ndarray:
    """Two interleaved spirals: radius ``r ~ U(0.08, 1)``, angle ``2 pi n r``, radius jitter
    ``U(-noise, noise)``; class 1 is class 0 rotated by pi. Shape ``(len(labels), 2)``."""
    r = rng.uniform(0.08, 1.0, size=len(labels))
    angle = 2 * np.pi * revolutions * r + np.pi * labels
    r = r + rng.uniform(-noise, noise, size=len(labels))
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)


def spirals(
    n_envs: int = 32,
    n_per_env: int = 1280,
    shortcut_dims: int = 32,
    n_test: int = 2000,
    revolutions: float = 2.0,
    noise: float = 0.02,
    seed: int | None = None,
) -> SpiralEnvs:
    """The synthetic memorisation benchmark of the AND-mask paper (Sec. 3.1, App. B.2).

    The label is carried by two interleaved spirals (the mechanism, the same in every
    environment, hard to fit). Each environment ``e`` also draws one shortcut vector
    ``s_e ~ N(0, I)`` in ``shortcut_dims`` dimensions; its class-1 examples carry ``+s_e``
    and its class-0 examples ``-s_e``: a linear, large-margin rule that fits every training
    environment but is a different rule in each. In the test set every example draws its own
    ``s``, so only the spirals predict its label. The spiral coordinates are standardised with
    the training set's mean and std. Classes are balanced within every environment.
    """
    n_envs = _check_positive_int("n_envs", n_envs)
    n_per_env = _check_positive_int("n_per_env", n_per_env, 2)
    shortcut_dims = _check_positive_int("shortcut_dims", shortcut_dims)
    n_test = _check_positive_int("n_test", n_test, 2)
    check_number("revolutions", revolutions, positive=True)
    check_number("noise", noise, low=0.0)
    rng = np.random.default_rng(resolve_seed(seed))

    def labels(n: int) -> np.ndarray:
        return rng.permutation(np.arange(n) % 2)

    y_train = np.stack([labels(n_per_env) for _ in range(n_envs)])  # (E, N)
    mech = _spiral_points(y_train.reshape(-1), revolutions, noise, rng)
    mean, std = mech.mean(axis=0), mech.std(axis=0)
    mech = ((mech - mean) / std).reshape(n_envs, n_per_env, 2)
    signature = rng.standard_normal((n_envs, 1, shortcut_dims))  # one s_e per environment
    shortcut = (2 * y_train[..., None] - 1) * signature
    x_train = np.concatenate([mech, shortcut], axis=2)

    y_test = labels(n_test)
    mech_test = (_spiral_points(y_test, revolutions, noise, rng) - mean) / std
    shortcut_test = (2 * y_test[:, None] - 1) * rng.standard_normal((n_test, shortcut_dims))
    x_test = np.concatenate([mech_test, shortcut_test], axis=1)
    return SpiralEnvs(
        torch.as_tensor(x_train, dtype=torch.float32),
        torch.as_tensor(y_train, dtype=torch.int64),
        torch.as_tensor(x_test, dtype=torch.float32),
        torch.as_tensor(y_test, dtype=torch.int64),
    )


class RandomLabelDigits(NamedTuple):
    """Digits where every training example is its own environment.

    ``x_envs`` ``(N, 1, 8, 8)``; ``y_random`` ``(N, 1)`` shuffled labels; ``y_true`` ``(N, 1)``
    the real labels; ``x_test`` ``(M, 8, 8)``, ``y_test`` ``(M,)`` with true labels.
    """

    x_envs: Tensor
    y_random: Tensor
    y_true: Tensor
    x_test: Tensor
    y_test: Tensor

    to = _to_device


def random_label_digits(
    seed: int | None = None, fraction: float = 1.0, test_fraction: float = 0.25
) -> RandomLabelDigits:
    """scikit-learn digits with the labels of a ``fraction`` of training examples shuffled
    among themselves (Zhang et al. 2017: class counts unchanged, the image-label link gone),
    stacked as one environment per example for the AND-mask."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    split = load_digits(seed=seed, test_fraction=test_fraction)
    gen = torch.Generator().manual_seed(resolve_seed(seed))
    n = len(split.y_train)
    chosen = torch.randperm(n, generator=gen)[: round(fraction * n)]
    y_random = split.y_train.clone()
    y_random[chosen] = split.y_train[chosen[torch.randperm(len(chosen), generator=gen)]]
    return RandomLabelDigits(
        split.x_train.unsqueeze(1),
        y_random.unsqueeze(1),
        split.y_train.unsqueeze(1),
        split.x_test,
        split.y_test,
    )
