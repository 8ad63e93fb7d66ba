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

:func:`run_grokking` (in :mod:`hvnotes.grokking`, with the data of a run) trains ``K`` settings
side by side (one :class:`hvnotes.models.GrokMLP` holding ``K`` independent copies) with
full-batch AdamW and records every probe in one history DataFrame; :func:`summarize` reads the
fit and grok times off it, :func:`fourier_ablation` is E3's intervention. The probes live in
:mod:`hvnotes.probes` (and are importable from here too); the rules that turn probes into
verdicts live in :mod:`hvnotes.explanations`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from hvnotes.datasets import modular_arithmetic
from hvnotes.grokking import (  # noqa: F401  (re-exported: their old home)
    LOSSES,
    GrokkingRuns,
    _accuracies,
    _pair_losses,
    group_order,
    modular_addition,
    run_grokking,
    train_split,
)
from hvnotes.models import GrokMLP
from hvnotes.probes import (  # noqa: F401  (re-exported)
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


# ----------------------------------------------------------------------------- interventions


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
