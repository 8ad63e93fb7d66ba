"""The probes that rival explanations of grokking read off a network (notebook 06).

One section per explanation, each a plain function of weights or outputs:

- **E1, the strawman** (Jeffares & van der Schaar 2025, Fig. 4): :func:`prime_count`, how many
  rounded weights are prime numbers;
- **E2, norm-driven simplification**: :func:`layer_norms`;
- **E3, a Fourier representation**: :func:`fourier_spectrum`, :func:`fourier_concentration`,
  :func:`fourier_project` (the ablation and its energy-matched control), :func:`key_frequencies`,
  :func:`neuron_inputs`; ``order`` reads the embedding along a group's circle
  (:func:`hvnotes.phenomena.group_order`);
- **E4, softmax collapse** (Prieto et al. 2025): :func:`exact_zero_rate` (the share of training
  pairs whose own training loss is exactly 0), :func:`softmax_collapse_rate` and the
  :func:`stablemax_cross_entropy` that avoids it.

:mod:`hvnotes.phenomena` trains the runs and records these probes along the way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from hvnotes import validation
from hvnotes.models import GrokMLP

# ----------------------------------------------------------------------------- E1: primes


def is_prime(values: np.ndarray | Sequence[int]) -> np.ndarray:
    """Elementwise primality of integers (any shape); 0, 1 and negatives are not prime.

    A sieve of Eratosthenes up to ``max(values)``, then a table look-up.
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"values must be integers, got dtype {values.dtype}")
    top = int(values.max(initial=1))
    sieve = np.ones(max(top, 1) + 1, dtype=bool)
    sieve[:2] = False
    for q in range(2, int(top**0.5) + 1):
        if sieve[q]:
            sieve[q * q :: q] = False
    out = np.zeros(values.shape, dtype=bool)
    positive = values >= 2
    out[positive] = sieve[values[positive]]
    return out


def _prime_counts(flat: Tensor, scale: float, absolute: bool) -> np.ndarray:
    """:func:`prime_count` of every row of ``flat`` ``(K, N)`` at once: ``(K,)`` ints."""
    ints = torch.round(flat.double() * scale).long().cpu().numpy()
    return is_prime(np.abs(ints) if absolute else ints).sum(axis=1)


def prime_count(
    weights: Tensor | Iterable[Tensor], scale: float = 1.0, absolute: bool = False
) -> int:
    """E1's probe: how many of ``round(scale * w)`` are prime numbers, over every tensor given.

    Args:
        weights: a tensor or an iterable of tensors (e.g. ``model.parameters()``), any shapes.
        scale: multiply before rounding (the strawman's first free detail).
        absolute: count ``|round(scale * w)|`` (its second free detail); else negatives never count.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    tensors = [weights] if isinstance(weights, Tensor) else list(weights)
    flat = torch.cat([w.detach().reshape(1, -1).double().cpu() for w in tensors], dim=1)
    return int(_prime_counts(flat, scale, absolute)[0])


# ----------------------------------------------------------------------------- E2: norms


def layer_norms(model: nn.Module) -> dict[str, Tensor]:
    """E2's probe: Frobenius norm of every parameter, per model copy.

    For a :class:`~hvnotes.models.GrokMLP` each value has shape ``(K,)`` (the first dimension of
    every parameter is the copy); for other modules it is a 0-d tensor per parameter.
    """
    stacked = isinstance(model, GrokMLP)
    norms = {}
    for name, w in model.named_parameters():
        w = w.detach()
        norms[name] = w.flatten(1).norm(dim=1) if stacked else w.norm()
    return norms


# ----------------------------------------------------------------------------- E3: Fourier


def _along_circle(embed: Tensor, order: Tensor | None) -> Tensor:
    if embed.dim() < 2:
        raise ValueError(f"embed must have shape (..., p, d), got {tuple(embed.shape)}")
    return embed if order is None else embed.index_select(-2, order.to(embed.device))


def fourier_spectrum(embed: Tensor, order: Tensor | None = None) -> Tensor:
    """Power of an embedding table at each frequency of the circle (constant term left out).

    Args:
        embed: ``(..., p, d)``: row ``t`` embeds token ``t``.
        order: the rows to read, in the order of the circle (:func:`group_order`); default all
            rows in token order.

    Returns:
        ``(..., n // 2)`` float64 for ``n`` rows read: entry ``f - 1`` is ``2 sum_j |F[f, j]|^2``
        for ``F = rfft(rows)`` along the circle, frequency ``f = 1 .. n // 2``: the factor 2
        counts the mirror frequency ``n - f`` (the same real wave), except at ``f = n / 2`` for
        even ``n``, which has no mirror. By Parseval the entries sum to ``n`` times the energy of
        the rows with their column means removed.
    """
    rows = _along_circle(embed, order)
    n = rows.shape[-2]
    if n < 3:
        raise ValueError(f"embed must have at least 3 rows on the circle, got {n}")
    spectrum = torch.fft.rfft(rows.detach().double(), dim=-2)  # (..., n // 2 + 1, d)
    power = (spectrum.abs() ** 2).sum(dim=-1)[..., 1:]
    mirror = torch.full((power.shape[-1],), 2.0, dtype=power.dtype, device=power.device)
    if n % 2 == 0:
        mirror[-1] = 1.0
    return power * mirror


def _check_k(k, n_freq: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_freq:
        raise ValueError(f"k must be an int in [1, {n_freq}], got {k!r}")
    return k


def fourier_concentration(embed: Tensor, k: int = 4, order: Tensor | None = None) -> Tensor:
    """E3's probe: fraction of the embedding's (non-constant) energy in its top ``k`` frequencies.

    ``embed`` ``(..., p, d)`` -> ``(...,)`` in ``[0, 1]``. A random table spreads its energy evenly,
    about ``k / (n // 2)``; a table built from ``k`` waves ``cos(2 pi f t / n + phase)`` gives 1.
    ``order``: see :func:`fourier_spectrum`.
    """
    power = fourier_spectrum(embed, order)
    _check_k(k, power.shape[-1])
    top = power.topk(k, dim=-1).values.sum(dim=-1)
    return (top / power.sum(dim=-1).clamp_min(1e-30)).float()


def neuron_inputs(model: GrokMLP) -> Tensor:
    """What each hidden neuron receives from each token: ``(K, p, 2h)``.

    ``[E W1_a, E W1_b]`` where ``W1_a``, ``W1_b`` are the halves of ``w1`` that read the first and
    the second operand. Unlike the raw embedding it ignores directions of ``E`` the network never
    reads (the random part left over from initialisation).
    """
    d = model.embed_dim
    with torch.no_grad():
        return torch.cat([model.embed @ model.w1[:, :d], model.embed @ model.w1[:, d:]], dim=-1)


def fourier_project(
    embed: Tensor,
    k: int = 6,
    which: str = "top",
    order: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Keep only the constant term and ``k`` frequencies of an embedding ``(..., p, d)``.

    ``which="top"``: the ``k`` strongest frequencies (E3's ablation: a network that computes with
    a few frequencies should not notice that the rest of its embedding is gone);
    ``which="bottom"``: the ``k`` weakest; ``which="random"``: ``k`` frequencies drawn at random
    (``generator``) among those *not* in the top ``k``, then rescaled so that the projection has
    exactly the energy (and so the Frobenius norm) of the top-``k`` projection — E3's
    energy-matched control. With ``order`` (:func:`group_order`) the frequencies are those of the
    rows read in that order, and rows outside ``order`` are left as they are. Same shape and dtype
    as ``embed``.
    """
    if which not in ("top", "bottom", "random"):
        raise ValueError(f"which must be 'top', 'bottom' or 'random', got {which!r}")
    rows = _along_circle(embed, order)
    n = rows.shape[-2]
    power = fourier_spectrum(rows)  # (..., n // 2); also checks the shape
    _check_k(k, power.shape[-1])
    spectrum = torch.fft.rfft(rows.detach().double(), dim=-2)  # (..., n // 2 + 1, d)
    top = power.topk(k, dim=-1).indices + 1
    if which == "top":
        chosen = top
    elif which == "bottom":
        chosen = power.topk(k, dim=-1, largest=False).indices + 1
    else:
        if 2 * k > power.shape[-1]:
            raise ValueError(f"k must be <= {power.shape[-1] // 2} for a random control, got {k}")
        rest = torch.ones_like(power, dtype=torch.bool).scatter_(-1, top - 1, False)
        noise = torch.rand(power.shape, generator=generator).to(power.device)
        chosen = (noise + 2.0 * rest).topk(k, dim=-1).indices + 1  # k random non-top frequencies
    keep = torch.zeros(spectrum.shape[:-1], dtype=torch.bool, device=embed.device)
    keep.scatter_(-1, chosen, True)
    waves = torch.fft.irfft(spectrum * keep[..., None], n=n, dim=-2)
    if which == "random":  # same energy as the top-k projection
        target = torch.gather(power, -1, top - 1).sum(-1)
        have = torch.gather(power, -1, chosen - 1).sum(-1).clamp_min(1e-30)
        waves = waves * (target / have).sqrt()[..., None, None]
    mean = spectrum[..., :1, :].real / n
    projected = (mean + waves).to(embed.dtype)
    if order is None:
        return projected
    out = embed.detach().clone()
    out[..., order.to(embed.device), :] = projected
    return out


def key_frequencies(embed: Tensor, k: int = 4, order: Tensor | None = None) -> list[int]:
    """The ``k`` frequencies (``1 .. n // 2``) with most of a ``(p, d)`` table's energy, sorted."""
    if embed.dim() != 2:
        raise ValueError(f"embed must have shape (p, d), got {tuple(embed.shape)}")
    power = fourier_spectrum(embed, order)
    return sorted(int(f) + 1 for f in power.topk(_check_k(k, power.shape[-1])).indices)


# ----------------------------------------------------------------------------- E4: collapse


def stablemax_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy with StableMax in place of softmax (Prieto et al. 2025), per row.

    ``s(z) = z + 1`` for ``z >= 0`` and ``1 / (1 - z)`` for ``z < 0`` replaces ``exp``; the loss
    is ``-log s(z_y) + log sum_j s(z_j)``. It grows like a log, not an exponential, so it cannot
    round to exactly zero the way float32 softmax does once logits are large.

    Args:
        logits: ``(..., C)``, finite; y: long ``(...)``, class indices in ``[0, C)``. Returns
        ``(...)``.
    """
    validation.check_tensor("logits", logits, min_ndim=1)
    validation.check_tensor("y", y, shape=tuple(logits.shape[:-1]), dtype="integer")
    validation.check_labels("y", y.flatten(), classes=logits.shape[-1])
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits.clamp(max=0)))
    return s.sum(-1).log() - s.gather(-1, y.unsqueeze(-1)).squeeze(-1).log()


def softmax_collapse_rate(logits: Tensor, y: Tensor) -> Tensor:
    """E4's probe: share of rows whose float32 softmax cross-entropy is exactly 0.

    Once the correct logit leads the others by more than about 17, ``exp`` of the gap underflows
    against 1 in float32: the loss rounds to 0 and so does its gradient ("softmax collapse").

    Args:
        logits: ``(..., N, C)``, finite; y: ``(..., N)`` class indices in ``[0, C)``. Returns
        ``(...)`` in ``[0, 1]``.

    NaN or inf logits are an error: their loss is never exactly 0, so they would read as "no
    collapse".
    """
    validation.check_tensor("logits", logits, min_ndim=2)
    validation.check_tensor("y", y, shape=tuple(logits.shape[:-1]), dtype="integer")
    validation.check_labels("y", y.flatten(), classes=logits.shape[-1])
    ce = nn.functional.cross_entropy(
        logits.float().flatten(0, -2), y.flatten(), reduction="none"
    ).view(y.shape)
    return (ce == 0).float().mean(-1)


def exact_zero_rate(losses: Tensor, mask: Tensor) -> Tensor:
    """E4's probe as a run measures it: the share of the ``mask``-ed pairs whose loss is exactly 0.

    ``losses`` ``(K, N)`` are per-pair losses *as the run was trained* (its own loss function, in
    its own dtype): a StableMax run is judged on the StableMax loss, a float64 run in float64.
    ``mask`` bool ``(K, N)`` (e.g. each run's training pairs). Returns ``(K,)`` in ``[0, 1]``.
    """
    if losses.shape != mask.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor shaped like losses {tuple(losses.shape)}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    return ((losses == 0) & mask).sum(-1) / mask.sum(-1).clamp_min(1)
