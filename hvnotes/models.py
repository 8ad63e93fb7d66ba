"""Small networks the notebooks train. Every model takes a batch first: ``(B, ...)``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from hvnotes import seeding


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
        """The class logits ``(B, classes)`` alone: the explanation head is not computed (the same
        values as ``logits_and_scores(x)[0]``, one matrix product cheaper)."""
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"x must have shape (B, {self.in_shape}), got {tuple(x.shape)}")
        return self.class_head(self.trunk(x))


# === Notebook 06: the grokking model ===
import torch  # noqa: E402  (kept inside this section: see the header of the file)


class GrokMLP(nn.Module):
    """``K`` independent copies of the grokking MLP, stored stacked and trained side by side.

    One copy: a shared token embedding ``E`` ``(p, d)``; the pair ``(a, b)`` becomes
    ``[E[a], E[b]]`` ``(2d,)`` -> ``Linear(2d, h)`` -> ReLU -> ``Linear(h, p)``: logits for
    ``(a + b) mod p``. Stacking ``K`` copies (``embed`` ``(K, p, d)``, ``w1`` ``(K, 2d, h)``,
    ``w2`` ``(K, h, p)``, biases ``(K, h)``, ``(K, p)``) turns a sweep of ``K`` settings into one
    batched matrix product per layer; the copies never share a number.

    Initialisation follows PyTorch's defaults (``nn.Embedding``: N(0, 1); ``nn.Linear``:
    U(±1/sqrt(fan_in)) for weight and bias), each copy drawn from its own seed and multiplied by
    its own ``init_scale`` (Omnigrok's knob).

    Args:
        p: vocabulary size (the modulus).
        embed_dim, hidden: ``d`` and ``h``.
        seeds: one seed per copy; ``K = len(seeds)`` (None: one copy, the run's
            ``hvnotes.derive_seed(0)``).
        init_scale: one float for every copy, or one per copy.
    """

    def __init__(
        self,
        p: int,
        embed_dim: int = 32,
        hidden: int = 128,
        seeds: Sequence[int] | None = None,
        init_scale: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__()
        for name, value in {"p": p, "embed_dim": embed_dim, "hidden": hidden}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an int >= 2, got {value!r}")
        seeds = [seeding.derive_seed(0)] if seeds is None else [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one per model copy)")
        k = len(seeds)
        scales = (
            [float(init_scale)] * k if isinstance(init_scale, int | float) else list(init_scale)
        )
        if len(scales) != k or any(s <= 0 for s in scales):
            raise ValueError(
                f"init_scale must be a positive float or {k} of them, got {init_scale!r}"
            )
        self.p, self.embed_dim, self.hidden, self.n_models = p, embed_dim, hidden, k

        def uniform(shape, fan_in, gen):
            return (torch.rand(shape, generator=gen) * 2 - 1) / fan_in**0.5

        tensors = {"embed": [], "w1": [], "b1": [], "w2": [], "b2": []}
        for seed, scale in zip(seeds, scales, strict=True):
            gen = torch.Generator().manual_seed(seed)
            tensors["embed"].append(torch.randn(p, embed_dim, generator=gen) * scale)
            tensors["w1"].append(uniform((2 * embed_dim, hidden), 2 * embed_dim, gen) * scale)
            tensors["b1"].append(uniform((hidden,), 2 * embed_dim, gen) * scale)
            tensors["w2"].append(uniform((hidden, p), hidden, gen) * scale)
            tensors["b2"].append(uniform((p,), hidden, gen) * scale)
        for name, parts in tensors.items():
            self.register_parameter(name, nn.Parameter(torch.stack(parts)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits ``(K, N, p)`` for token pairs ``a``, ``b`` (long, values in ``[0, p)``).

        ``a`` and ``b`` are ``(N,)`` (the same pairs for every copy) or ``(K, N)`` (each copy
        its own pairs, e.g. its own training split).
        """
        if (
            a.shape != b.shape
            or a.dim() not in (1, 2)
            or (a.dim() == 2 and len(a) != self.n_models)
        ):
            raise ValueError(
                f"a and b must both have shape (N,) or ({self.n_models}, N), "
                f"got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if a.dim() == 1:
            x = torch.cat([self.embed[:, a], self.embed[:, b]], dim=-1)  # (K, N, 2d)
        else:
            k = torch.arange(self.n_models, device=a.device)[:, None]
            x = torch.cat([self.embed[k, a], self.embed[k, b]], dim=-1)  # (K, N, 2d)
        h = torch.relu(torch.baddbmm(self.b1[:, None], x, self.w1))  # (K, N, h)
        return torch.baddbmm(self.b2[:, None], h, self.w2)  # (K, N, p)
