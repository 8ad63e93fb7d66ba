"""How notebook 06 scores rival explanations of grokking: predictions registered before the runs.

An explanation earns trust by predicting runs it has not seen, and by predicting more than a
*null rival* that knows only what the prompting run showed. Three steps, each in a module of its
own; every name is re-exported here (``explanations.load_registration``, and the
``hvnotes.explanations:...`` names of the twins and of :data:`PINNED`, keep working):

1. **Register** (:mod:`hvnotes.registration`). Every prediction, the null rival's among them,
   lives in a file of its own, ``hvnotes/registered/grokking.json``: the settings to run, their
   seeds, every threshold and, per setting, each rival's prediction codes.
   :func:`load_registration` reads it, and :meth:`Registration.digest` hashes it together with
   the source of every function that runs the settings, reads their outcomes and judges them
   (:data:`PINNED`): a changed prediction, threshold or rule changes the digest. A unit test
   pins the digest, and git dates the file.
2. **Run and read** (:mod:`hvnotes.registered_runs`). :func:`run_registered` trains the settings
   of one part of the course (``"lesson"`` or ``"deep dive"``) on the registered seeds, beside
   the baseline on the same seeds; :func:`run_outcomes` reads each run (grok time, E1's count,
   E3's Fourier ablation with its energy-matched control, E4's collapse);
   :func:`timing_outcomes` compares each setting's grok times with the baseline's on the same
   seeds (:func:`paired_interval`).
3. **Judge and score** (this module). :func:`verdicts` gives each prediction a verdict,
   ``"held"``, ``"failed"`` or ``"unclear"``; :func:`score` weighs them by risk: a held
   prediction earns a point only where the null rival's prediction on the same setting and probe
   did not hold, a failed one costs a point, anything else earns nothing.

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

from collections.abc import Mapping

import pandas as pd

from hvnotes.registered_runs import (  # noqa: F401  (re-exported: their old home)
    _fourier_category,
    paired_interval,
    run_outcomes,
    run_registered,
    timing_outcomes,
)
from hvnotes.registration import (  # noqa: F401  (re-exported: their old home)
    NULL,
    OBSERVABLE,
    PARTS,
    PINNED,
    SETTING_KEYS,
    Registration,
    load_registration,
    parse_registration,
)

VERDICTS = ("held", "failed", "unclear")


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
