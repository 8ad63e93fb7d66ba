"""Grokking on modular arithmetic, and the probes that rival explanations use (notebook 06).

The phenomenon (Power et al. 2022): a network fits its training pairs of ``(a + b) mod p`` early,
and only much later (with weight decay) does its accuracy on the held-out pairs jump. Each rival
explanation of the notebook reads one probe here:

- **E1, the strawman** (Jeffares & van der Schaar 2025, Fig. 4): the number of *prime numbers*
  among the rounded weights tracks generalisation. :func:`prime_count`.
- **E2, norm-driven simplification** (Nanda et al. 2023; Varma et al. 2023; Liu et al. 2023,
  Omnigrok): weight decay slowly shrinks a memorising solution until a smaller, general one wins.
  :func:`layer_norms`.
- **E3, structured representation** (Nanda et al. 2023; Gromov 2023): the general solution
  computes with a few Fourier frequencies of the group's circle, so the embedding becomes sparse
  in frequency space. :func:`fourier_concentration`, :func:`fourier_project`.
- **E4, softmax collapse** (Prieto et al. 2025): without decay the logits grow until float32
  cross-entropy rounds to exactly 0 on the training pairs and their gradient vanishes.
  :func:`softmax_collapse_rate`, :func:`stablemax_cross_entropy`.

:func:`run_grokking` trains ``K`` settings side by side (one :class:`hvnotes.models.GrokMLP`
holding ``K`` independent copies) with full-batch AdamW and records every probe in one history
DataFrame; :func:`summarize` reads the fit and grok times off it. The probes live in
:mod:`hvnotes.probes` (and are importable from here too); the rules that turn probes into
verdicts live in :mod:`hvnotes.explanations`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from hvnotes import seeding
from hvnotes.datasets import OPERATIONS, modular_arithmetic, pair_split
from hvnotes.models import GrokMLP
from hvnotes.probes import (
    _prime_counts,
    exact_zero_rate,
    fourier_concentration,
    fourier_project,
    fourier_spectrum,
    is_prime,
    key_frequencies,
    layer_norms,
    neuron_inputs,
    prime_count,
    softmax_collapse_rate,
    stablemax_cross_entropy,
)

__all__ = [
    "exact_zero_rate",
    "fourier_ablation",
    "fourier_concentration",
    "fourier_project",
    "fourier_spectrum",
    "grok_time",
    "group_order",
    "is_prime",
    "key_frequencies",
    "layer_norms",
    "modular_addition",
    "neuron_inputs",
    "prime_count",
    "probe_change",
    "run_grokking",
    "softmax_collapse_rate",
    "stablemax_cross_entropy",
    "steps_to",
    "summarize",
    "train_split",
]

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

    The optimizer is Adam with *decoupled* weight decay applied per run before each step,
    ``w <- w (1 - lr * wd_r)``: what ``torch.optim.AdamW`` does, but with one ``wd`` per run.

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
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    shrink = (1 - lr * torch.tensor(wds, dtype=dtype, device=device)).clamp_min(0.0)
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
    for step in range(1, steps + 1):
        per_pair = _pair_losses(model(a[idx], b[idx]), y[idx], loss)  # (K, n_max)
        total = (per_pair * weight).sum()  # the sum of each run's mean loss: runs do not interact
        opt.zero_grad(set_to_none=True)
        total.backward()
        with torch.no_grad():  # decoupled weight decay, one rate per run, before the Adam step
            for w in model.parameters():
                w.mul_(shrink.view(-1, *[1] * (w.dim() - 1)))
        opt.step()
        early = eval_every >= 5 and step < eval_every and step % (eval_every // 5) == 0
        if step % eval_every == 0 or early or step == steps:
            frames.append(evaluate(step))
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


def fourier_ablation(
    model: GrokMLP,
    runs: pd.DataFrame,
    k: int = 6,
    which: str = "top",
    generator: torch.Generator | None = None,
    circle: str = "group",
) -> pd.DataFrame:
    """E3's intervention: replace each run's embedding by a ``k``-frequency Fourier projection.

    Args:
        model: the trained model from ``run_grokking(..., return_model=True)``.
        runs: one row per run in model order with ``train_frac``, ``seed`` and ``operation``
            columns (e.g. :func:`summarize` of the history), to rebuild each run's split.
        k, which, generator: the frequencies kept (plus the constant term), see
            :func:`fourier_project` (``"random"`` is the energy-matched control).
        circle: ``"group"`` reads the embedding along :func:`group_order`; ``"tokens"`` in token
            order (the same for addition; for multiplication the naive reading).

    Returns:
        per run (same index as ``runs``): ``train_acc``, ``test_acc`` before and
        ``train_acc_<which><k>``, ``test_acc_<which><k>`` after the projection. The model is
        left unchanged.
    """
    if len(runs) != model.n_models:
        raise ValueError(
            f"runs must have one row per model copy ({model.n_models}), got {len(runs)}"
        )
    operations = set(runs["operation"]) if "operation" in runs else {"add"}
    if len(operations) != 1:
        raise ValueError(f"runs must share one operation, got {sorted(operations)}")
    operation = operations.pop()
    if circle not in ("group", "tokens"):
        raise ValueError(f"circle must be 'group' or 'tokens', got {circle!r}")
    device = model.embed.device
    a, b, y = modular_arithmetic(model.p, operation, device)
    splits = zip(runs["train_frac"], runs["seed"], strict=True)
    train = torch.stack([train_split(model.p, f, int(s), operation) for f, s in splits])
    train = train.to(device)
    before = _accuracies(model, a, b, y, train)[1]
    original = model.embed.data.clone()
    try:
        order = group_order(model.p, operation) if circle == "group" else None
        model.embed.data = fourier_project(original, k, which, order, generator)
        after = _accuracies(model, a, b, y, train)[1]
    finally:
        model.embed.data = original
    cols = {
        "train_acc": before[0],
        "test_acc": before[1],
        f"train_acc_{which}{k}": after[0],
        f"test_acc_{which}{k}": after[1],
    }
    return pd.DataFrame({c: v.float().cpu().numpy() for c, v in cols.items()}, index=runs.index)


# ----------------------------------------------------------------------------- reading histories


def steps_to(history: pd.DataFrame, column: str = "test_acc", threshold: float = 0.95) -> pd.Series:
    """First evaluated step at which ``column >= threshold``, per run label (NaN where never)."""
    if column not in history:
        raise ValueError(f"column must be one of the history's columns, got {column!r}")
    order = history["label"].unique()
    hit = history[history[column] >= threshold].groupby("label")["step"].min()
    return hit.reindex(order).rename(f"step_{column}>={threshold:g}")


def grok_time(history: pd.DataFrame, threshold: float = 1.0) -> pd.Series:
    """Loss-based timing: when each run's test loss first falls below ``threshold``.

    The step is interpolated between the two evaluations around the crossing, linearly in
    ``log(step)`` against ``log(loss)``, so it moves smoothly with the run instead of jumping by
    ``eval_every`` as a thresholded accuracy does. NaN where the test loss never gets there.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    out = {}
    for label, g in history.groupby("label", sort=False):
        g = g[g["step"] > 0].sort_values("step")
        steps, losses = g["step"].to_numpy(float), g["test_loss"].to_numpy(float)
        below = np.flatnonzero(losses < threshold)
        if len(below) == 0:
            out[label] = np.nan
            continue
        i = below[0]
        if i == 0:
            out[label] = steps[0]
            continue
        (s0, s1), (l0, l1) = np.log(steps[i - 1 : i + 1]), np.log(losses[i - 1 : i + 1])
        frac = (l0 - math.log(threshold)) / (l0 - l1)
        out[label] = float(np.exp(s0 + frac * (s1 - s0)))
    return pd.Series(out, name=f"test_loss<{threshold:g}")


def summarize(
    history: pd.DataFrame, train_at: float = 0.99, test_at: float = 0.95, loss_at: float = 1.0
) -> pd.DataFrame:
    """One row per run (indexed by label, in run order): its settings, ``fit_step`` (first step
    with train accuracy ``>= train_at``), ``grok_step`` (test ``>= test_at``; NaN if not within
    the budget), ``grok_time`` (:func:`grok_time` at ``loss_at``), the final accuracies and the
    final ``collapse`` rate."""
    order = history["label"].unique()
    last = history.sort_values("step", kind="stable").groupby("label").last().reindex(order)
    setting_cols = ["weight_decay", "train_frac", "seed", "init_scale", "operation", "loss"]
    out = last[[c for c in setting_cols if c in last]].copy()
    out["fit_step"] = steps_to(history, "train_acc", train_at)
    out["grok_step"] = steps_to(history, "test_acc", test_at)
    if "test_loss" in history:
        out["grok_time"] = grok_time(history, loss_at).reindex(order)
    out["final_train_acc"] = last["train_acc"]
    out["final_test_acc"] = last["test_acc"]
    if "collapse" in last:
        out["final_collapse"] = last["collapse"]
    out.index.name = "run"
    return out


def probe_change(history: pd.DataFrame, column: str, since: str = "fit") -> pd.Series:
    """Per run label: ``column`` at the last step minus its value at the run's ``fit_step`` (the
    end of memorisation, ``since="fit"``; NaN for a run that never fit its training set) or at
    initialisation (``since="init"``)."""
    if since not in ("fit", "init"):
        raise ValueError(f"since must be 'fit' or 'init', got {since!r}")
    fit = steps_to(history, "train_acc", 0.99)
    out = {}
    for label, g in history.groupby("label", sort=False):
        g = g.set_index("step")[column]
        if since == "init":
            out[label] = g.iloc[-1] - g.iloc[0]
        else:
            out[label] = g.iloc[-1] - g.loc[fit[label]] if fit[label] == fit[label] else np.nan
    return pd.Series(out, name=f"change_{column}")
