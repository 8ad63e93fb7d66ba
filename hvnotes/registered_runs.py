"""Notebook 06's registered runs: train the registered settings and read their outcomes.

:func:`run_registered` trains the settings of one part of the course (``"lesson"`` or ``"deep
dive"``) on the registered seeds, beside the baseline on the same seeds; :func:`run_outcomes`
reads each run (grok time, E1's count, E3's Fourier ablation with its energy-matched control,
E4's collapse); :func:`timing_outcomes` compares each setting's grok times with the baseline's on
the same seeds (:func:`paired_interval`). The registration they run is read by
:mod:`hvnotes.registration`, and :mod:`hvnotes.explanations` judges the outcomes and re-exports
every name here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hvnotes import phenomena, seeding
from hvnotes.registration import Registration


def paired_interval(
    base_times: Sequence[float],
    new_times: Sequence[float],
    budget: float | tuple[float, float],
    level: float = 0.95,
) -> tuple[float, float]:
    """Interval for the mean of ``log(new / base)`` over paired seeds (a Student-t interval).

    Seed ``i`` of a setting is compared with seed ``i`` of the baseline (same data split and
    initialisation draw), so each setting's own seed variation enters the interval. A time that
    is NaN (no grokking within the budget) counts as the budget, which can only understate a
    delay; ``budget`` is one number, or ``(base_budget, new_budget)`` when the two differ. Fewer
    than two pairs give ``(-inf, inf)``. Raises ``ValueError`` on unequal lengths, a non-positive
    time or budget, or ``level`` outside (0, 1).
    """
    from scipy import stats

    base, new = np.asarray(base_times, dtype=float), np.asarray(new_times, dtype=float)
    budgets = (budget, budget) if np.ndim(budget) == 0 else tuple(budget)
    if base.shape != new.shape or base.ndim != 1:
        raise ValueError(f"base_times and new_times must be equal-length 1-d, got {base.shape}, "
                         f"{new.shape}")  # fmt: skip
    if not min(budgets) > 0 or (base <= 0).any() or (new <= 0).any():
        raise ValueError(f"times and budget must be positive, got {base}, {new}, {budget}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if len(base) < 2:
        return -math.inf, math.inf
    d = np.log(
        np.where(np.isnan(new), budgets[1], new) / np.where(np.isnan(base), budgets[0], base)
    )
    half = stats.t.ppf((1 + level) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


def _fourier_category(run: Mapping, circle: str, rules: Mapping) -> str:
    test = run["test_acc"]
    if test >= rules["memorised_below"]:
        keeps = run[f"test_top_{circle}"] >= test - rules["tolerance"]
        control_breaks = run[f"test_random_{circle}"] <= rules["broken_below"] * test
        return "few carry it" if keeps and control_breaks else "other"
    return "fit destroyed" if run[f"train_top_{circle}"] < rules["destroyed_below"] else "other"


def run_outcomes(
    history: pd.DataFrame, model, rules: Mapping, generator: torch.Generator
) -> pd.DataFrame:
    """Each run's outcome, read off its history and trained model (one row per run label).

    Columns: ``grok_time`` (test loss below ``rules["loss_at"]``; NaN: not within the budget),
    ``grokked``, ``train_acc``, ``test_acc``; E1's ``prime_change`` (``rules["e1_detail"]`` from
    initialisation to the end) and ``primes`` (``"rises"``/``"falls"``); for each circle (``group``,
    ``tokens``) E3's ``train_top_*``, ``test_top_*`` (the embedding projected on its top
    ``rules["k"]`` frequencies), ``train_random_*``, ``test_random_*`` (``k`` other frequencies
    with the same energy, drawn with ``generator``) and ``fourier_*`` (``"few carry it"`` when the
    projection keeps test accuracy within ``tolerance`` and the control leaves at most
    ``broken_below`` of it; in a run under ``memorised_below`` test accuracy, ``"fit destroyed"``
    when the projection leaves train accuracy under ``destroyed_below``; else ``"other"``); E4's
    ``collapse`` rate and ``collapse_state`` (``"collapse"`` at ``collapsed_at`` or more,
    ``"no collapse"`` under a tenth of it, else ``"some"``).
    """
    s = phenomena.summarize(history, loss_at=rules["loss_at"])
    out = s[["grok_time", "final_train_acc", "final_test_acc", "final_collapse"]].rename(
        columns={"final_train_acc": "train_acc", "final_test_acc": "test_acc",
                 "final_collapse": "collapse"})  # fmt: skip
    out["grokked"] = out["grok_time"].notna()
    out["prime_change"] = phenomena.probe_change(history, rules["e1_detail"], since="init")
    out["primes"] = np.where(out["prime_change"] > 0, "rises", "falls")
    k = rules["k"]
    for circle in ("group", "tokens"):
        top = phenomena.fourier_ablation(model, s, k, "top", circle=circle)
        rnd = phenomena.fourier_ablation(model, s, k, "random", generator, circle=circle)
        for split in ("train", "test"):
            out[f"{split}_top_{circle}"] = top[f"{split}_acc_top{k}"]
            out[f"{split}_random_{circle}"] = rnd[f"{split}_acc_random{k}"]
        out[f"fourier_{circle}"] = [_fourier_category(r, circle, rules) for _, r in out.iterrows()]
    at = rules["collapsed_at"]
    out["collapse_state"] = np.where(
        out["collapse"] >= at,
        "collapse",
        np.where(out["collapse"] < at / 10, "no collapse", "some"),
    )
    return out


def run_registered(
    registration: Registration, part: str, device: torch.device | str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Train the baseline and every setting of ``part`` on the registered seeds.

    Each setting is the registration's ``scheme`` with its own changes; seed ``i`` of every
    setting is ``hvnotes.derive_seed(scheme["seeds"][i])`` (or the setting's own ``seeds``).
    Settings that share an operation, a loss and a step budget train side by side in one
    :func:`hvnotes.phenomena.run_grokking` call.

    Returns:
        ``(history, runs, models)``: the concatenated histories; one row per run
        (:func:`run_outcomes` plus ``setting``, ``seed_index``, ``steps``), indexed by label; and
        the trained models, one per call.
    """
    scheme, rules = registration.data["scheme"], registration.rules
    names = ["baseline", *registration.settings(part)]
    plan = []
    for name in names:
        setting = {**scheme, **registration.data["settings"][name]}
        for i, offset in enumerate(setting["seeds"]):
            plan.append(setting | {"setting": name, "seed_index": i, "label": f"{name} #{i}",
                                   "seed": seeding.derive_seed(offset)})  # fmt: skip
    generator = torch.Generator().manual_seed(seeding.derive_seed(rules["control_seed"]))
    histories, tables, models = [], [], []
    for key in dict.fromkeys((r["operation"], r["loss"], r["steps"]) for r in plan):
        group = [r for r in plan if (r["operation"], r["loss"], r["steps"]) == key]
        history, model = phenomena.run_grokking(
            scheme["p"],
            **{f: [r[f] for r in group] for f in ("weight_decay", "train_frac", "seed")},
            init_scale=[r["init_scale"] for r in group],
            labels=[r["label"] for r in group],
            steps=key[2], operation=key[0], loss=key[1], lr=scheme["lr"],
            embed_dim=scheme["embed_dim"], hidden=scheme["hidden"], top_k=rules["k"],
            device=device, return_model=True,
        )  # fmt: skip
        table = run_outcomes(history, model, rules, generator)
        for f in ("setting", "seed_index", "steps"):
            table[f] = [r[f] for r in group]
        histories.append(history)
        tables.append(table)
        models.append(model)
    return pd.concat(histories, ignore_index=True), pd.concat(tables), models


def timing_outcomes(runs: pd.DataFrame, rules: Mapping) -> pd.DataFrame:
    """Per setting: ``n`` seeds, how many ``grokked``, whether the baseline grokked on all of
    them (``base_grokked``), and the ``low``/``high`` ends of :func:`paired_interval` of its grok
    times against the baseline's on the same seeds (``ratio``: the geometric mean of the
    ratios, NaN times counted as the budget)."""
    base = runs[runs["setting"] == "baseline"].set_index("seed_index")
    rows = {}
    for setting, g in runs.groupby("setting", sort=False):
        g = g.set_index("seed_index")
        b = base.loc[g.index]
        budgets = (b["steps"].iloc[0], g["steps"].iloc[0])
        low, high = paired_interval(b["grok_time"], g["grok_time"], budgets, rules["level"])
        ratio = np.exp(np.log(g["grok_time"].fillna(budgets[1]) /
                              b["grok_time"].fillna(budgets[0])).mean())  # fmt: skip
        rows[setting] = {"n": len(g), "grokked": int(g["grokked"].sum()),
                         "base_grokked": bool(b["grokked"].all()), "ratio": float(ratio),
                         "low": low, "high": high}  # fmt: skip
    return pd.DataFrame(rows).T
