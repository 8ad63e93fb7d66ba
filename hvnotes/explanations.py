"""How notebook 06 scores rival explanations of grokking: predictions registered before the runs.

An explanation earns trust by predicting runs it has not seen, and by predicting more than a
*null rival* that knows only what the prompting run showed. Three steps, each a function here:

1. **Register.** Every prediction, the null rival's among them, lives in a file of its own,
   ``hvnotes/registered/grokking.json``: the settings to run, their seeds, every threshold and,
   per setting, each rival's prediction codes. :func:`load_registration` reads it, and
   :meth:`Registration.digest` hashes it together with the source of every function that runs
   the settings, reads their outcomes and judges them (:data:`PINNED`): a changed prediction,
   threshold or rule changes the digest. A unit test pins the digest, and git dates the file.
2. **Run and read.** :func:`run_registered` trains the settings of one part of the course
   (``"lesson"`` or ``"deep dive"``) on the registered seeds, beside the baseline on the same
   seeds; :func:`run_outcomes` reads each run (grok time, E1's count, E3's Fourier ablation with
   its energy-matched control, E4's collapse); :func:`timing_outcomes` compares each setting's
   grok times with the baseline's on the same seeds (:func:`paired_interval`).
3. **Judge and score.** :func:`verdicts` gives each prediction a verdict, ``"held"``,
   ``"failed"`` or ``"unclear"``; :func:`score` weighs them by risk: a held prediction earns a
   point only where the null rival's prediction on the same setting and probe did not hold, a
   failed one costs a point, anything else earns nothing.

Prediction codes, by the observable they speak about (:data:`OBSERVABLE`):

* ``timing`` (judged on a setting's seeds together): ``"same"`` (the interval of the mean
  log-ratio of grok times contains 0), ``"earlier"``, ``"later"`` (it lies below / above 0; a
  setting where no seed groks within its budget counts as later), ``"never"`` (no seed groks),
  ``"groks"`` (every seed groks);
* ``primes`` (E1's count, from initialisation to the end): ``"rises iff it groks"``,
  ``"rises"``, ``"falls"``;
* ``fourier`` (E3's ablation): ``"few frequencies iff it generalises"`` (read on the group's
  circle), and the null rival's ``"few carry it"`` / ``"fit destroyed"`` (read in token order, as
  the prompting run was read);
* ``collapse`` (E4's probe, on each run's own loss): ``"collapse"``, ``"no collapse"``.

A probe prediction holds on a setting when it holds on every one of its seeds, and fails when it
fails on any.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
import torch

from hvnotes import phenomena, seeding

VERDICTS = ("held", "failed", "unclear")
OBSERVABLE = {
    **dict.fromkeys(("same", "earlier", "later", "never", "groks"), "timing"),
    **dict.fromkeys(("rises iff it groks", "rises", "falls"), "primes"),
    **dict.fromkeys(("few frequencies iff it generalises", "few carry it", "fit destroyed"),
                    "fourier"),
    **dict.fromkeys(("collapse", "no collapse"), "collapse"),
}  # fmt: skip
NULL = "null"
PARTS = ("lesson", "deep dive")
SETTING_KEYS = ("part", "weight_decay", "train_frac", "init_scale", "operation", "loss", "steps",
                "seeds")  # fmt: skip

# What the registration's digest covers besides the file: everything that runs the registered
# settings, reads their outcomes and judges them. (The network, hvnotes.models.GrokMLP, is shared
# by the course and not pinned; its history is in git.)
PINNED = (
    "hvnotes.datasets.arithmetic:modular_arithmetic",
    "hvnotes.datasets.arithmetic:pair_split",
    "hvnotes.phenomena:train_split",
    "hvnotes.phenomena:group_order",
    "hvnotes.phenomena:run_grokking",
    "hvnotes.phenomena:_pair_losses",
    "hvnotes.phenomena:_accuracies",
    "hvnotes.phenomena:fourier_ablation",
    "hvnotes.phenomena:steps_to",
    "hvnotes.phenomena:grok_time",
    "hvnotes.phenomena:summarize",
    "hvnotes.phenomena:probe_change",
    "hvnotes.probes:is_prime",
    "hvnotes.probes:_prime_counts",
    "hvnotes.probes:_along_circle",
    "hvnotes.probes:_check_k",
    "hvnotes.probes:fourier_spectrum",
    "hvnotes.probes:fourier_project",
    "hvnotes.probes:stablemax_cross_entropy",
    "hvnotes.probes:exact_zero_rate",
    "hvnotes.explanations:paired_interval",
    "hvnotes.explanations:run_registered",
    "hvnotes.explanations:run_outcomes",
    "hvnotes.explanations:_fourier_category",
    "hvnotes.explanations:timing_outcomes",
    "hvnotes.explanations:judge_timing",
    "hvnotes.explanations:judge_run",
    "hvnotes.explanations:judge",
    "hvnotes.explanations:verdicts",
    "hvnotes.explanations:score",
)


# ----------------------------------------------------------------------------- registration


@dataclass(frozen=True)
class Registration:
    """A registration file, parsed: ``data["scheme"]`` (the baseline setting and the seeds),
    ``data["rules"]`` (every threshold), ``data["settings"]`` (what each setting changes, and the
    part of the course that runs it) and ``data["predictions"]`` (setting -> rival -> codes)."""

    data: dict

    @property
    def rules(self) -> dict:
        return self.data["rules"]

    def settings(self, part: str) -> list[str]:
        """The settings a part of the course runs, in file order (the baseline not included)."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return [s for s, v in self.data["settings"].items() if v.get("part") == part]

    def table(self, part: str) -> pd.DataFrame:
        """The predictions of a part as a table: one row per setting, one column per rival."""
        predictions = self.data["predictions"]
        rows = {
            s: {r: "; ".join(c) for r, c in predictions[s].items()} for s in self.settings(part)
        }
        rivals = sorted({r for row in rows.values() for r in row} - {NULL}) + [NULL]
        return pd.DataFrame(rows).T.reindex(columns=rivals).fillna("")

    def canonical(self) -> str:
        return json.dumps(self.data, sort_keys=True, ensure_ascii=False)

    def digest(self) -> str:
        """SHA-256 of the registration's data and of the source of every :data:`PINNED`
        function as it is bound now (so a replaced rule changes it too)."""
        h = hashlib.sha256(self.canonical().encode())
        for name in PINNED:
            module, _, attr = name.partition(":")
            fn = getattr(importlib.import_module(module), attr)
            try:
                source = inspect.getsource(fn)
            except (OSError, TypeError):
                source = repr(fn)
            h.update(f"\n# {name}\n{source}".encode())
        return h.hexdigest()


def load_registration(name: str = "grokking") -> Registration:
    """Read and check ``hvnotes/registered/<name>.json``. Raises ``ValueError`` on an unknown
    code, setting key or part, a prediction for a setting that is not registered, two codes of
    one rival on one observable, or a rival's observable that the null rival does not predict."""
    text = resources.files("hvnotes").joinpath("registered", f"{name}.json").read_text("utf-8")
    return parse_registration(json.loads(text))


def parse_registration(data: dict) -> Registration:
    """Check a registration's data (see :func:`load_registration`) and wrap it."""
    settings, predictions = data["settings"], data["predictions"]
    for setting, values in settings.items():
        unknown = set(values) - set(SETTING_KEYS)
        if unknown or (setting != "baseline" and values.get("part") not in PARTS):
            raise ValueError(f"setting {setting!r}: unknown keys {sorted(unknown)} or part")
    for setting, rivals in predictions.items():
        if setting not in settings or setting == "baseline":
            raise ValueError(f"predictions for {setting!r}, which is not a registered setting")
        null = {OBSERVABLE.get(c) for c in rivals.get(NULL, [])}
        for rival, codes in rivals.items():
            observables = [OBSERVABLE.get(c) for c in codes]
            if None in observables or len(set(observables)) != len(observables):
                raise ValueError(f"{setting!r}, {rival}: unknown or repeated codes {codes}")
            if not set(observables) <= null:
                raise ValueError(f"{setting!r}: the null rival must predict what {rival} does")
    return Registration(data)


# ----------------------------------------------------------------------------- runs and outcomes


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


# ----------------------------------------------------------------------------- judging


def judge_timing(code: str, timing: Mapping) -> str:
    """Verdict on a timing code for one setting (a row of :func:`timing_outcomes`).

    Relative codes (``same``, ``earlier``, ``later``) are ``"unclear"`` when the baseline did not
    grok on every seed; ``later`` holds when no seed groks within the budget.
    """
    n, grokked, low, high = timing["n"], timing["grokked"], timing["low"], timing["high"]
    if code == "never":
        return "held" if grokked == 0 else "failed"
    if code == "groks":
        return "held" if grokked == n else "failed" if grokked == 0 else "unclear"
    if code not in ("same", "earlier", "later"):
        raise ValueError(f"code must be a timing code, got {code!r}")
    if not timing["base_grokked"]:
        return "unclear"
    if code == "same":
        return "held" if grokked > 0 and low <= 0 <= high else "failed"
    if code == "later":
        return "held" if grokked == 0 or low > 0 else "failed" if high < 0 else "unclear"
    return (
        "held" if grokked > 0 and high < 0 else "failed" if grokked == 0 or low > 0 else "unclear"
    )


def judge_run(code: str, run: Mapping, rules: Mapping) -> bool:
    """Whether a probe code holds on one run (a row of :func:`run_outcomes`)."""
    if code == "rises iff it groks":
        return (run["primes"] == "rises") == bool(run["grokked"])
    if code in ("rises", "falls"):
        return run["primes"] == code
    if code == "few frequencies iff it generalises":
        generalises = run["test_acc"] >= rules["memorised_below"]
        return run["fourier_group"] == ("few carry it" if generalises else "fit destroyed")
    if code in ("few carry it", "fit destroyed"):
        return run["fourier_tokens"] == code
    if code in ("collapse", "no collapse"):
        return run["collapse_state"] == code
    raise ValueError(f"code must be a probe code, got {code!r}")


def judge(code: str, runs: pd.DataFrame, timing: Mapping, rules: Mapping) -> str:
    """The verdict on one code for one setting: its runs (rows of :func:`run_outcomes`) and its
    row of :func:`timing_outcomes`. A probe code holds when it holds on every run."""
    if OBSERVABLE.get(code) == "timing":
        return judge_timing(code, timing)
    held = [judge_run(code, run, rules) for _, run in runs.iterrows()]
    return "held" if all(held) else "failed"


def verdicts(
    registration: Registration, runs: pd.DataFrame, extra: Mapping | None = None
) -> pd.DataFrame:
    """Every registered prediction of the settings in ``runs`` with its verdict: one row per
    (setting, observable), one column per rival (``""`` where it predicts nothing), the null
    rival last. ``extra`` adds rivals that are not in the file (``{name: {setting: [codes]}}``,
    the learner's own prediction, say), judged by the same rules."""
    timing = timing_outcomes(runs, registration.rules)
    predictions = registration.data["predictions"]
    rows = []
    for setting in [s for s in runs["setting"].unique() if s != "baseline"]:
        rivals = {**predictions.get(setting, {})}
        for name, table in (extra or {}).items():
            if table.get(setting):
                rivals[name] = table[setting]
        for rival, codes in rivals.items():
            for code in codes:
                verdict = judge(code, runs[runs["setting"] == setting], timing.loc[setting],
                                registration.rules)  # fmt: skip
                rows.append({"setting": setting, "observable": OBSERVABLE[code], "rival": rival,
                             "verdict": verdict})  # fmt: skip
    table = pd.DataFrame(rows).pivot_table(index=["setting", "observable"], columns="rival",
                                           values="verdict", aggfunc="first", sort=False)  # fmt: skip
    order = [c for c in table.columns if c != NULL] + [NULL]
    return table.reindex(columns=order).fillna("")


def score(table: pd.DataFrame) -> pd.DataFrame:
    """Weigh each rival's verdicts by risk against the null rival (one row per rival).

    ``risky`` counts held predictions where the null rival's prediction on the same setting and
    observable did not hold; ``score = risky - failed``. A prediction the null rival also gets
    right earns nothing, however often it holds; the null rival itself scores ``-failed``.
    """
    out = {}
    for rival in table.columns:
        v, null = table[rival], table[NULL]
        made = v != ""
        risky = int(((v == "held") & (null != "held") & made).sum())
        failed = int((v == "failed").sum())
        out[rival] = {"predictions": int(made.sum()), "held": int((v == "held").sum()),
                      "risky": risky, "failed": failed, "unclear": int((v == "unclear").sum()),
                      "score": risky - failed}  # fmt: skip
    return pd.DataFrame(out).T
