"""Modular arithmetic for grokking (notebook 06): every pair of an operation mod p, and a
random train/test split of the pairs."""

from __future__ import annotations

import torch
from torch import Tensor

from hvnotes.datasets.images import (
    _check_fraction,
    _check_positive_int,
)
from hvnotes.seeding import resolve_seed

# === Notebook 06: modular arithmetic (grokking) ===

OPERATIONS = ("add", "multiply")


def modular_arithmetic(
    p: int, operation: str = "add", device: torch.device | str | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Every pair of a modular operation: ``a``, ``b``, ``y``, each long ``(n_pairs,)``.

    * ``"add"``: all ``p * p`` pairs ``0 <= a, b < p``, ``y = (a + b) mod p``; row ``i`` holds
      ``a = i // p``, ``b = i % p``.
    * ``"multiply"``: the multiplicative group, ``(p - 1)^2`` pairs ``1 <= a, b < p``,
      ``y = (a * b) mod p`` (never 0; ``p`` must be prime for this to be a group).

    Tokens and labels stay in ``[0, p)``, so one network of vocabulary ``p`` serves both.
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p must be an int >= 2, got {p!r}")
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
    start = 0 if operation == "add" else 1
    values = torch.arange(start, p)
    a, b = torch.meshgrid(values, values, indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    y = (a + b) % p if operation == "add" else (a * b) % p
    return a.to(device), b.to(device), y.to(device)


def pair_split(n_pairs: int, train_frac: float, seed: int | None = None) -> Tensor:
    """Bool mask ``(n_pairs,)``: ``round(train_frac * n_pairs)`` pairs, drawn at random, train.

    The complement is the test set, so train and test are disjoint and cover every pair.
    """
    n_pairs = _check_positive_int("n_pairs", n_pairs, 2)
    train_frac = _check_fraction("train_frac", train_frac)
    n_train = round(train_frac * n_pairs)
    if not 0 < n_train < n_pairs:
        raise ValueError(
            f"train_frac={train_frac} leaves an empty train or test set of {n_pairs} pairs"
        )
    order = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(resolve_seed(seed)))
    mask = torch.zeros(n_pairs, dtype=torch.bool)
    mask[order[:n_train]] = True
    return mask
