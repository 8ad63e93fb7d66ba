"""Grokking runs on modular arithmetic, trained side by side (notebook 06).

The data of a run (every pair of ``(a op b) mod p``, a seeded train split, the tokens in the
order of the group's circle), :class:`GrokkingRuns` (``K`` runs as one algorithm unit:
full-batch Adam with decoupled weight decay, one rate per run) and :func:`run_grokking`, which
trains them through the package's loop and records every probe of :mod:`hvnotes.probes` in one
history. :mod:`hvnotes.phenomena` re-exports all of it beside the readings of the histories.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import seeding, validation
from hvnotes.datasets import OPERATIONS, modular_arithmetic, pair_split
from hvnotes.models import GrokMLP
from hvnotes.probes import (
    _prime_counts,
    exact_zero_rate,
    fourier_concentration,
    layer_norms,
    neuron_inputs,
    stablemax_cross_entropy,
)
from hvnotes.train import run

__all__ = ["LOSSES", "GrokkingRuns", "group_order", "modular_addition", "run_grokking",
           "train_split"]  # fmt: skip

LOSSES = ("softmax", "stablemax")


# ----------------------------------------------------------------------------- data


def modular_addition(
    p: int, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Every pair of ``(a + b) mod p``: ``a``, ``b``, ``y``, each long ``(p * p,)``
    (:func:`hvnotes.datasets.modular_arithmetic` with ``operation="add"``)."""
    return modular_arithmetic(p, "add", device)


def _n_pairs(p: int, operation: str) -> int:
    return p * p if operation == "add" else (p - 1) ** 2


def train_split(
    p: int, train_frac: float, seed: int | None = None, operation: str = "add"
) -> Tensor:
    """Bool mask over the pairs of :func:`~hvnotes.datasets.modular_arithmetic` (``(p * p,)`` for
    addition, ``((p - 1)^2,)`` for multiplication): ``round(train_frac * n)`` random pairs train,
    the rest test."""
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
    return pair_split(_n_pairs(p, operation), train_frac, seed)


def group_order(p: int, operation: str = "add") -> Tensor:
    """The tokens in the order of the group's circle, long ``(n,)``.

    Addition mod ``p`` is the cycle ``0, 1, …, p - 1``. The multiplicative group of a prime
    ``p`` is a cycle too, but in the order of the powers of a primitive root ``g``:
    ``g^0, g^1, …, g^(p-2)`` (the discrete logarithm). A Fourier probe of a multiplication network
    must read its embedding in this order to see the group's waves.
    """
    if operation == "add":
        return torch.arange(p)
    if operation != "multiply":
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
    for g in range(2, p):
        powers = [pow(g, i, p) for i in range(p - 1)]
        if len(set(powers)) == p - 1:
            return torch.tensor(powers)
    raise ValueError(f"p must be a prime > 2 for multiplication, got {p!r}")


# ----------------------------------------------------------------------------- training


def _per_run(value, k: int, name: str) -> list:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value] * k
    if len(value) != k:
        raise ValueError(f"{name} must be one value or {k} values (one per run), got {len(value)}")
    return list(value)


class GrokkingRuns(nn.Module):
    """``K`` grokking runs trained side by side: one :class:`hvnotes.models.GrokMLP` holding
    ``K`` copies, full-batch Adam with decoupled weight decay, one rate per run (the algorithm
    unit of :func:`run_grokking`, DomainBed's ``update`` / ``predict``).

    Args:
        model: the ``K`` copies (trained in place).
        weight: ``(K, n)``: each training row's weight in its run's loss (``1 / n_r`` on run
            ``r``'s rows, 0 on padding), so the loss is the sum of each run's mean loss.
        loss: ``"softmax"`` or ``"stablemax"`` cross-entropy.
        lr, betas: Adam's; weight_decay: one rate per run, ``w <- w (1 - lr * wd_r)`` before
            each Adam step.
    """

    def __init__(
        self,
        model: GrokMLP,
        weight: Tensor,
        loss: str,
        *,
        lr: float,
        betas: tuple[float, float],
        weight_decay: Sequence[float],
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.model, self.weight, self.loss = model, weight, loss
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
        decay = torch.tensor(weight_decay, dtype=weight.dtype, device=weight.device)
        self.shrink = (1 - lr * decay).clamp_min(0.0)

    def update(self, a: Tensor, b: Tensor, y: Tensor) -> dict[str, float]:
        """One full-batch step on the pairs ``a``, ``b`` ``(K, n)`` with labels ``y`` ``(K, n)``."""
        per_pair = _pair_losses(self.model(a, b), y, self.loss)  # (K, n)
        total = (per_pair * self.weight).sum()  # each run's mean loss, summed: runs do not mix
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        with torch.no_grad():  # decoupled weight decay, one rate per run, before the Adam step
            for w in self.model.parameters():
                w.mul_(self.shrink.view(-1, *[1] * (w.dim() - 1)))
        self.optimizer.step()
        return {"loss": total.item()}

    def predict(self, a: Tensor, b: Tensor) -> Tensor:
        """Logits ``(K, n, p)`` of every run on the pairs ``a``, ``b``."""
        with torch.no_grad():
            return self.model(a, b)


def run_grokking(
    p: int = 37,
    *,
    weight_decay: float | Sequence[float] = 1.0,
    train_frac: float | Sequence[float] = 0.5,
    seed: int | Sequence[int] | None = None,
    init_scale: float | Sequence[float] = 1.0,
    labels: Sequence[str] | None = None,
    steps: int = 3000,
    lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.98),
    embed_dim: int = 32,
    hidden: int = 64,
    eval_every: int = 50,
    prime_scales: Sequence[float] = (1, 10, 100),
    top_k: int = 6,
    operation: str = "add",
    loss: str = "softmax",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    return_model: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, GrokMLP]:
    """Train ``K`` grokking runs side by side with full-batch AdamW and record every probe.

    ``weight_decay``, ``train_frac``, ``seed`` and ``init_scale`` each take one value (shared) or
    a list (one per run); ``K`` is the length of the lists. Run ``r`` uses its own train split
    (``train_split(p, train_frac[r], seed[r], operation)``) and its own initialisation (seed,
    scale); the runs share nothing but the matrix products, so each behaves as if trained alone.
    ``operation``, ``loss`` (``"softmax"`` or ``"stablemax"``, :func:`stablemax_cross_entropy`) and
    ``dtype`` (float32 or float64, of the weights and every computation) are shared by the runs.

    The runs train as one :class:`GrokkingRuns` through the package's loop,
    ``train.run(runs.update, full_batch)``: Adam with *decoupled* weight decay applied per run
    before each step, ``w <- w (1 - lr * wd_r)``, what ``torch.optim.AdamW`` does, but with one
    ``wd`` per run.

    Returns:
        a long DataFrame, one row per (run, evaluated step), with columns ``label`` (``labels[r]``
        or ``"run r"``), ``run``, the settings (``weight_decay``, ``train_frac``, ``seed``,
        ``init_scale``, ``operation``, ``loss``, ``dtype``), ``step`` (0 is the initialisation),
        ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc`` (the run's own loss, softmax or
        StableMax cross-entropy, in its dtype); E2's ``norm_<param>`` (``embed``, ``w1``, ``b1``,
        ``w2``, ``b2``) and ``norm_total``; E1's ``primes_x<s>`` and ``primes_abs_x<s>`` (all
        parameters, each ``s`` in ``prime_scales``); E3's ``fourier_top<k>`` (the embedding read
        along :func:`group_order`), ``fourier_top<k>_tokens`` (in token order) and
        ``fourier_top<k>_in`` (:func:`neuron_inputs`, along the group); E4's ``collapse``
        (:func:`exact_zero_rate` of the run's own per-pair loss on its training pairs: a
        StableMax run is judged on the loss it was trained with). Rows come every ``eval_every``
        steps, every ``eval_every // 5`` before that (so that a log-step axis shows the early
        fit; only when ``eval_every >= 5``) and at the last step. With ``return_model=True`` also
        the trained :class:`~hvnotes.models.GrokMLP`.
    """
    lengths = {
        len(v) for v in (weight_decay, train_frac, seed, init_scale) if isinstance(v, Sequence)
    }
    if len(lengths) > 1:
        raise ValueError(
            f"the per-run lists must have equal lengths, got lengths {sorted(lengths)}"
        )
    k = lengths.pop() if lengths else 1
    wds = [float(w) for w in _per_run(weight_decay, k, "weight_decay")]
    fracs = [float(f) for f in _per_run(train_frac, k, "train_frac")]
    seeds = [seeding.resolve_seed(s) for s in _per_run(seed, k, "seed")]
    scales = [float(s) for s in _per_run(init_scale, k, "init_scale")]
    labels = [f"run {r}" for r in range(k)] if labels is None else [str(x) for x in labels]
    if len(labels) != k or len(set(labels)) != k:
        raise ValueError(f"labels must be {k} distinct strings (one per run), got {labels!r}")
    if any(not w >= 0 or math.isinf(w) for w in wds):
        raise ValueError(f"weight_decay must be finite and >= 0, got {wds}")
    validation.check_number("lr", lr, positive=True)
    if not isinstance(steps, int) or steps < 1 or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(
            f"steps and eval_every must be positive ints, got {steps!r}, {eval_every!r}"
        )
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")

    a, b, y = modular_arithmetic(p, operation, device)
    order = group_order(p, operation).to(device)
    train = torch.stack(
        [train_split(p, f, s, operation) for f, s in zip(fracs, seeds, strict=True)]
    ).to(device)
    # Each run's training rows, padded to the longest split; padding rows get zero weight.
    idx = torch.zeros(k, int(train.sum(1).max()), dtype=torch.long, device=device)
    weight = torch.zeros(idx.shape, dtype=dtype, device=device)
    for r in range(k):
        rows = train[r].nonzero().squeeze(1)
        idx[r, : len(rows)], weight[r, : len(rows)] = rows, 1.0 / len(rows)

    model = GrokMLP(p, embed_dim, hidden, seeds=seeds, init_scale=scales).to(device, dtype)
    runs = GrokkingRuns(model, weight, loss, lr=lr, betas=betas, weight_decay=wds)
    settings = pd.DataFrame(
        {
            "label": labels,
            "run": range(k),
            "weight_decay": wds,
            "train_frac": fracs,
            "seed": seeds,
            "init_scale": scales,
            "operation": operation,
            "loss": loss,
            "dtype": str(dtype).removeprefix("torch."),
        }
    )

    def evaluate(step: int) -> pd.DataFrame:
        per_pair, (train_acc, test_acc, train_loss, test_loss) = _accuracies(
            model, a, b, y, train, loss
        )
        row = {
            "step": step,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
        }
        norms = layer_norms(model)
        row.update({f"norm_{n}": v for n, v in norms.items()})
        row["norm_total"] = torch.stack(list(norms.values())).norm(dim=0)
        flat = torch.cat([w.detach().flatten(1) for w in model.parameters()], dim=1)  # (K, N)
        for s in prime_scales:
            for absolute in (False, True):
                row[f"primes_{'abs_' if absolute else ''}x{s:g}"] = _prime_counts(flat, s, absolute)
        row[f"fourier_top{top_k}"] = fourier_concentration(model.embed, top_k, order)
        row[f"fourier_top{top_k}_tokens"] = fourier_concentration(model.embed, top_k)
        row[f"fourier_top{top_k}_in"] = fourier_concentration(neuron_inputs(model), top_k, order)
        row["collapse"] = exact_zero_rate(per_pair, train)  # its own loss, in its own dtype
        frame = pd.DataFrame(
            {c: v.cpu().numpy() if isinstance(v, Tensor) else v for c, v in row.items()}
        )
        return pd.concat([settings, frame], axis=1)

    frames = [evaluate(0)]

    def record(row: dict) -> bool:  # the probes every eval_every steps, denser before that
        step = row["step"]
        early = eval_every >= 5 and step < eval_every and step % (eval_every // 5) == 0
        if step % eval_every == 0 or early or step == steps:
            frames.append(evaluate(step))
        return False

    # full batch: every step sees each run's whole training split
    full_batch = itertools.repeat((a[idx], b[idx], y[idx]), steps)
    run(runs.update, full_batch, steps=steps, log_every=1, on_row=record, progress=False)
    history = pd.concat(frames, ignore_index=True)
    return (history, model) if return_model else history


def _pair_losses(logits: Tensor, y: Tensor, loss: str) -> Tensor:
    """Per-pair training loss ``(K, N)`` of logits ``(K, N, p)`` and labels ``(K, N)`` or
    ``(N,)``, in the logits' dtype: softmax or StableMax cross-entropy."""
    y = y.expand(logits.shape[:-1])
    if loss == "softmax":
        return nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")
    return stablemax_cross_entropy(logits, y)


@torch.no_grad()
def _accuracies(
    model: GrokMLP, a: Tensor, b: Tensor, y: Tensor, train: Tensor, loss: str = "softmax"
):
    """Per-pair losses ``(K, n)`` (the run's ``loss``) and per-run train acc, test acc, train loss,
    test loss, each ``(K,)``; ``train`` ``(K, n)``."""
    logits = model(a, b)  # (K, n, p)
    per_pair = _pair_losses(logits, y, loss)
    correct = (logits.argmax(-1) == y).to(logits.dtype)
    tr, te = train.to(logits.dtype), (~train).to(logits.dtype)

    def mean(v, m):
        return (v * m).sum(1) / m.sum(1)

    return per_pair, (mean(correct, tr), mean(correct, te), mean(per_pair, tr), mean(per_pair, te))
