"""How notebook 06 scores rival explanations: registered before the runs, judged by fixed rules.

An explanation earns trust by predicting runs it has not seen. So the capstone works in three
steps, each one a function here:

1. **Calibrate** what "no effect" looks like: the grok times of several seeds of the reference
   setting give a prediction band for one more seed (:func:`prediction_band`). The seeds that
   define the band are never scored.
2. **Register** every prediction as data, with the band and every threshold, *before* the new runs
   execute; the registration is frozen by a SHA-256 digest that the notebook prints
   (:func:`register`, :meth:`Registration.digest`).
3. **Score** the new runs with rules written down here, not chosen after the fact
   (:func:`score`). Every prediction can fail: a run that never groks fails "groks", a grok time
   outside the band fails "band", and so on. A change smaller than the seed band is ``"unclear"``.

Prediction codes, by the probe they are judged on (``outcomes`` column in brackets):

* timing (``grok_time``, NaN = not within the budget): ``"band"`` (inside the seed band),
  ``"groks"`` (within the budget), ``"never"``, ``"earlier"`` / ``"later"`` (than the band);
* ``"rises iff it groks"`` (``prime_change``, ``grokked``): E1's strawman;
* ``"few frequencies"`` (``test_acc``, ``train_top``, ``test_top``, ``test_control``; the same
  with ``_tokens`` for ``"few token frequencies"``): E3's ablation and its energy-matched control;
* ``"collapse"`` / ``"no collapse"`` (``collapse``): E4's softmax-collapse probe.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

VERDICTS = ("held", "failed", "unclear")
TIMING = ("band", "groks", "never", "earlier", "later")
CODES = (*TIMING, "rises iff it groks", "few frequencies", "few token frequencies", "collapse",
         "no collapse")  # fmt: skip


def prediction_band(times: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Where one more seed's grok time should fall, from the grok times of ``n`` seeds.

    A Student-t prediction interval on ``log(time)``: ``exp(m ± t_{n-1} s sqrt(1 + 1/n))`` with
    ``m``, ``s`` the mean and standard deviation of the logs. Under a log-normal model a new seed
    lands outside it with probability ``1 - level``; the min–max of a few seeds would be missed
    far more often (by a third of new seeds when ``n = 5``).

    Raises ``ValueError`` for fewer than 3 times, a missing (NaN) or non-positive time, or
    ``level`` outside (0, 1).
    """
    from scipy import stats

    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or len(t) < 3:
        raise ValueError(f"times must hold at least 3 grok times, got {t.tolist()}")
    if not np.isfinite(t).all() or (t <= 0).any():
        raise ValueError(
            f"times must be positive and finite (every calibration seed must grok), got {t.tolist()}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    logs = np.log(t)
    n, m, s = len(logs), logs.mean(), logs.std(ddof=1)
    half = stats.t.ppf((1 + level) / 2, n - 1) * s * math.sqrt(1 + 1 / n)
    return float(math.exp(m - half)), float(math.exp(m + half))


def judge_timing(prediction: str, time: float, band: tuple[float, float], budget: float) -> str:
    """Verdict on a timing prediction, given a run's grok ``time`` (NaN: not within ``budget``).

    ``"earlier"`` and ``"later"`` are decided only outside the seed ``band``: inside it the change
    is no bigger than what a new seed does, so the verdict is ``"unclear"``. A run that did not
    grok within the budget counts as later than the band only if the budget reaches past the band
    (else ``"unclear"``).
    """
    if prediction not in TIMING:
        raise ValueError(f"prediction must be one of {TIMING}, got {prediction!r}")
    low, high = band
    never = time != time  # NaN
    if prediction == "never":
        return "held" if never else "failed"
    if prediction == "groks":
        return "failed" if never else "held"
    if prediction == "band":
        return "held" if not never and low <= time <= high else "failed"
    if never:
        later = "held" if budget > high else "unclear"
        return later if prediction == "later" else "failed" if later == "held" else "unclear"
    if prediction == "later":
        return "held" if time > high else "failed" if time < low else "unclear"
    return "held" if time < low else "failed" if time > high else "unclear"


def judge_ablation(
    outcome: Mapping, suffix: str = "", tolerance: float = 0.05, memorised_below: float = 0.1,
    generalised_at: float = 0.95,
) -> str:  # fmt: skip
    """E3's rule: a few frequencies carry the general computation, and only those.

    * a run that only memorised (test accuracy below ``memorised_below``): projecting the
      embedding on its top frequencies must destroy the fit to the training set (train < 0.5);
    * otherwise the projection may cost at most ``tolerance`` test accuracy, and in a run that
      generalised (test ``>= generalised_at``) the energy-matched control must break it (test at
      most half of what it was): if any frequencies of the same energy would do, the claim that
      *these* few carry the computation fails.

    ``outcome`` holds ``test_acc`` and ``train_top{suffix}``, ``test_top{suffix}``,
    ``test_control{suffix}``.
    """
    test = outcome["test_acc"]
    if test < memorised_below:
        return "held" if outcome[f"train_top{suffix}"] < 0.5 else "failed"
    keeps = outcome[f"test_top{suffix}"] >= test - tolerance
    if test >= generalised_at:
        keeps = keeps and outcome[f"test_control{suffix}"] <= test / 2
    return "held" if keeps else "failed"


def judge_collapse(prediction: str, rate: float, collapsed_at: float = 0.5) -> str:
    """E4's probe: ``"collapse"`` holds when at least ``collapsed_at`` of the training pairs have an
    exactly-zero float32 loss at the end; ``"no collapse"`` holds below a tenth of that, fails at
    or above it, and is ``"unclear"`` in between."""
    if prediction == "collapse":
        return "held" if rate >= collapsed_at else "failed"
    if prediction == "no collapse":
        return (
            "held" if rate < collapsed_at / 10 else "failed" if rate >= collapsed_at else "unclear"
        )
    raise ValueError(f"prediction must be 'collapse' or 'no collapse', got {prediction!r}")


def judge(prediction: str, outcome: Mapping, rules: Mapping) -> str:
    """The verdict on one registered ``prediction`` for one run's ``outcome`` under ``rules``
    (``band``, ``budget``, ``tolerance``, ``memorised_below``, optionally ``collapsed_at``)."""
    if prediction in TIMING:
        return judge_timing(prediction, outcome["grok_time"], rules["band"], rules["budget"])
    if prediction == "rises iff it groks":
        grokked = outcome["grok_time"] == outcome["grok_time"]
        return "held" if (outcome["prime_change"] > 0) == grokked else "failed"
    if prediction in ("few frequencies", "few token frequencies"):
        suffix = "_tokens" if prediction == "few token frequencies" else ""
        return judge_ablation(outcome, suffix, rules["tolerance"], rules["memorised_below"])
    if prediction in ("collapse", "no collapse"):
        return judge_collapse(prediction, outcome["collapse"], rules.get("collapsed_at", 0.5))
    raise ValueError(f"prediction must be one of {CODES}, got {prediction!r}")


@dataclass(frozen=True)
class Registration:
    """Predictions (one row per new run, one column per explanation; ``""`` = no prediction) and
    the rules that will judge them, fixed before the runs."""

    predictions: pd.DataFrame
    rules: dict = field(default_factory=dict)

    def canonical(self) -> str:
        """The registration as canonical JSON (sorted keys, rounded floats): what is hashed."""

        def plain(value):
            if isinstance(value, float | np.floating):
                return round(float(value), 6)
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            return value if isinstance(value, str | int | bool) or value is None else str(value)

        table = {str(r): {str(c): str(v) for c, v in row.items()}
                 for r, row in self.predictions.iterrows()}  # fmt: skip
        return json.dumps({"predictions": table, "rules": plain(self.rules)}, sort_keys=True)

    def digest(self) -> str:
        """SHA-256 of :meth:`canonical`: print it before the runs, compare it after."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()


def register(predictions: pd.DataFrame, **rules) -> Registration:
    """Freeze ``predictions`` (index: run labels; values: codes of :data:`CODES` or ``""``) and the
    ``rules`` (``band``, ``budget``, ``tolerance``, ``memorised_below``, and any details worth
    fixing, such as E1's variant or E3's ``k``). Raises ``ValueError`` on an unknown code or a
    missing rule."""
    missing = {"band", "budget", "tolerance", "memorised_below"} - set(rules)
    if missing:
        raise ValueError(f"rules must include {sorted(missing)}")
    unknown = sorted({str(v) for v in predictions.to_numpy().ravel()} - {*CODES, ""})
    if unknown:
        raise ValueError(f"predictions must be codes from {CODES} or '', got {unknown}")
    return Registration(predictions.copy(), dict(rules))


def score(registration: Registration, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Judge every registered prediction on the runs' ``outcomes`` (index: the same run labels).

    Returns a DataFrame shaped like the predictions: a verdict from :data:`VERDICTS` where a
    prediction was registered, ``""`` elsewhere. Raises ``ValueError`` when a registered run has
    no outcome.
    """
    table = registration.predictions
    missing = sorted(set(table.index) - set(outcomes.index))
    if missing:
        raise ValueError(f"outcomes must have a row for every registered run, missing {missing}")
    verdicts = pd.DataFrame("", index=table.index, columns=table.columns)
    for run, row in table.iterrows():
        for explanation, prediction in row.items():
            if prediction:
                verdicts.loc[run, explanation] = judge(
                    prediction, outcomes.loc[run], registration.rules
                )
    return verdicts


def tally(verdicts: pd.DataFrame) -> pd.DataFrame:
    """How many predictions of each explanation held, failed or were unclear (rows: verdicts)."""
    counts = {c: verdicts[c][verdicts[c] != ""].value_counts() for c in verdicts.columns}
    return pd.DataFrame(counts).reindex(list(VERDICTS)).fillna(0).astype(int)
