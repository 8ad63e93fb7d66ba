"""Small networks the notebooks train. Every model takes a batch first: ``(B, ...)``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from hvnotes import seeding, validation


def _positive_ints(name: str, values, allow_empty: bool = True) -> tuple[int, ...]:
    """A sequence (not a single number or a string) of ints >= 1."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(
            f"{name} must be a sequence of positive ints, e.g. (64, 32); got {values!r}"
        )
    if not values and not allow_empty:
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    try:
        return tuple(validation.check_integer(name, v, low=1) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of positive ints, got {values!r}") from None


def mlp(
    in_features: int, hidden: Sequence[int] = (50, 30), out_features: int = 10
) -> nn.Sequential:
    """A ReLU MLP that flattens its input first.

    Input ``(B, *shape)`` with ``prod(shape) == in_features``; output logits ``(B, out_features)``.
    """
    in_features = validation.check_positive_int("in_features", in_features)
    out_features = validation.check_positive_int("out_features", out_features)
    hidden = _positive_ints("hidden", hidden)
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
        in_shape = _positive_ints("in_shape", in_shape, allow_empty=False)
        hidden = _positive_ints("hidden", hidden, allow_empty=False)
        classes = validation.check_positive_int("classes", classes, low=2)
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
        p, embed_dim, hidden = (
            validation.check_positive_int(name, value, low=2)
            for name, value in (("p", p), ("embed_dim", embed_dim), ("hidden", hidden))
        )
        if seeds is None:
            seeds = [seeding.derive_seed(0)]
        elif isinstance(seeds, str) or not isinstance(seeds, Iterable):
            raise TypeError(f"seeds must be a sequence of ints (one per copy), got {seeds!r}")
        else:
            seeds = [seeding.resolve_seed(s, "seeds") for s in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one per model copy)")
        k = len(seeds)
        many = isinstance(init_scale, Sequence) or getattr(init_scale, "ndim", 0) > 0
        scales = list(init_scale) if many else [init_scale] * k
        if len(scales) != k:
            raise ValueError(
                f"init_scale must be a positive float or {k} of them, got {init_scale!r}"
            )
        scales = [validation.check_number("init_scale", s, positive=True) for s in scales]
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
        for name, t in (("a", a), ("b", b)):
            validation.check_tensor(name, t, dtype="integer", rows=False)
        if (
            a.shape != b.shape
            or a.dim() not in (1, 2)
            or (a.dim() == 2 and len(a) != self.n_models)
        ):
            raise ValueError(
                f"a and b must both have shape (N,) or ({self.n_models}, N), "
                f"got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        for name, t in (("a", a), ("b", b)):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.p):
                raise ValueError(
                    f"{name} must hold tokens in [0, {self.p}), got {t.min()}..{t.max()}"
                )
        if a.dim() == 1:
            x = torch.cat([self.embed[:, a], self.embed[:, b]], dim=-1)  # (K, N, 2d)
        else:
            k = torch.arange(self.n_models, device=a.device)[:, None]
            x = torch.cat([self.embed[k, a], self.embed[k, b]], dim=-1)  # (K, N, 2d)
        h = torch.relu(torch.baddbmm(self.b1[:, None], x, self.w1))  # (K, N, h)
        return torch.baddbmm(self.b2[:, None], h, self.w2)  # (K, N, p)
