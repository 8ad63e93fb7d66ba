"""Notebook 06's registration: the predictions, seeds and thresholds fixed before the runs.

Every prediction, the null rival's among them, lives in a file of its own,
``hvnotes/registered/grokking.json``: the settings to run, their seeds, every threshold and, per
setting, each rival's prediction codes (:data:`OBSERVABLE` says which observable each code speaks
about). :func:`load_registration` reads it and :func:`parse_registration` checks it;
:meth:`Registration.digest` hashes it together with the source of every function that runs the
settings, reads their outcomes and judges them (:data:`PINNED`): a changed prediction, threshold
or rule changes the digest. A unit test pins the digest, and git dates the file. Every name here
is re-exported by :mod:`hvnotes.explanations` (the twin's target
``hvnotes.explanations:load_registration`` keeps working), and :data:`PINNED` names the pinned
functions by their names there.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from dataclasses import dataclass
from importlib import resources

import pandas as pd

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
    "hvnotes.grokking:_per_run",
    "hvnotes.grokking:GrokkingRuns",
    "hvnotes.train:run",
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
