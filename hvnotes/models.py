"""Small networks the notebooks train. Every model takes a batch first: ``(B, ...)``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(
    in_features: int, hidden: Sequence[int] = (50, 30), out_features: int = 10
) -> nn.Sequential:
    """A ReLU MLP that flattens its input first.

    Input ``(B, *shape)`` with ``prod(shape) == in_features``; output logits ``(B, out_features)``.
    """
    if not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features must be a positive int, got {in_features!r}")
    if not isinstance(out_features, int) or out_features < 1:
        raise ValueError(f"out_features must be a positive int, got {out_features!r}")
    if any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


# === Notebook 04: the two-headed SST network ===


# === Notebook 06: the grokking model ===
