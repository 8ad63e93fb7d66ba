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
import math  # noqa: E402

from torch import Tensor  # noqa: E402


class DualHeadMLP(nn.Module):
    """A classifier that also scores every input feature (Bassan et al. 2025, SAX's MNIST net).

    A shared ReLU trunk ``prod(shape) -> hidden`` feeds two heads: class logits ``(B, classes)``
    and one sigmoid score per input feature, reshaped to the input's shape ``(B, *shape)``.
    ``forward`` returns the logits only, so the model drops into ``train.fit``, ``predict``,
    Captum and every sufficiency check like a plain classifier; ``scores``/``logits_and_scores``
    give the explanation head.
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (28, 28),
        hidden: Sequence[int] = (128, 64),
        classes: int = 10,
    ):
        super().__init__()
        in_shape = tuple(in_shape)
        if not in_shape or any(not isinstance(d, int) or d < 1 for d in in_shape):
            raise ValueError(f"in_shape must be a sequence of positive ints, got {in_shape!r}")
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(
                f"hidden must be a non-empty sequence of positive ints, got {hidden!r}"
            )
        if not isinstance(classes, int) or classes < 2:
            raise ValueError(f"classes must be an int >= 2, got {classes!r}")
        self.in_shape = in_shape
        n = math.prod(in_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width = n
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.class_head = nn.Linear(width, classes)
        self.mask_head = nn.Linear(width, n)

    def logits_and_scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, *in_shape)`` -> logits ``(B, classes)`` and mask scores in (0, 1) ``(B, *in_shape)``."""
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"x must have shape (B, {self.in_shape}), got {tuple(x.shape)}")
        h = self.trunk(x)
        return self.class_head(h), self.mask_head(h).sigmoid().view(x.shape)

    def scores(self, x: Tensor) -> Tensor:
        """Mask scores in (0, 1), shape ``(B, *in_shape)``; the explanation is ``scores >= tau``."""
        return self.logits_and_scores(x)[1]

    def forward(self, x: Tensor) -> Tensor:
        return self.logits_and_scores(x)[0]


# === Notebook 06: the grokking model ===
