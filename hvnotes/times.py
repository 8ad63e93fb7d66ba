"""How long each notebook takes: measured run times and estimated study times, from one file.

``hvnotes/times.json`` is written by ``make bench`` and ``make robustness`` (never by hand): for
each notebook the wall times of its measured runs (median, min, max and how many), when, where
and by which command they were taken, whether it is a lesson or a deep dive, and the words of
prose and the exercises it holds. Every time the course quotes comes from it::

    from hvnotes import times
    times.table()            # the map: each notebook's run time and study time
    times.frame()            # the same as a pandas DataFrame

Study time is an estimate from a stated rule, not a measurement: reading the prose at
``words_per_minute``, plus ``minutes_per_exercise`` for each exercise, plus the run time, rounded
up to ``round_minutes`` (the rule and its numbers are stored in the file, under ``"rule"``).

This module reads the file with the standard library only (pandas only for :func:`frame`), so
repository tools can load it without importing torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

DATA = Path(__file__).with_name("times.json")
DEEP_DIVE = "_deep_dive"
#: The study-time rule; the data file stores its own copy, which wins.
RULE = {
    "words_per_minute": 120,
    "minutes_per_exercise": 5,
    "round_minutes": 5,
}


def kind(stem: str) -> str:
    """``"deep dive"`` for ``NN_name_deep_dive``, else ``"lesson"``."""
    return "deep dive" if stem.endswith(DEEP_DIVE) else "lesson"


def load(path: str | Path | None = None) -> dict:
    """The data file as a dict: ``{"rule": {...}, "notebooks": {stem: entry}}``."""
    path = Path(path) if path is not None else DATA
    if not path.exists():
        return {"rule": dict(RULE), "notebooks": {}}
    data = json.loads(path.read_text())
    data.setdefault("rule", dict(RULE))
    data.setdefault("notebooks", {})
    return data


def rule_text(rule: dict | None = None) -> str:
    """The study-time rule in words."""
    r = {**RULE, **(rule or {})}
    return (
        f"study time = the prose read at {r['words_per_minute']} words a minute "
        f"+ {r['minutes_per_exercise']} minutes per exercise + the run time, "
        f"rounded up to {r['round_minutes']} minutes"
    )


def study_minutes(entry: dict, rule: dict | None = None, seconds: float | None = None) -> int:
    """Estimated study time of one notebook, in minutes, by the rule (``seconds``: the run time
    to count, the entry's median by default)."""
    r = {**RULE, **(rule or {})}
    for name in ("words", "exercises"):
        if not isinstance(entry.get(name), int) or entry[name] < 0:
            raise ValueError(f"entry[{name!r}] must be a non-negative int, got {entry.get(name)!r}")
    run = entry["median"] if seconds is None else seconds
    minutes = (
        entry["words"] / r["words_per_minute"]
        + entry["exercises"] * r["minutes_per_exercise"]
        + run / 60
    )
    step = r["round_minutes"]
    return int(max(step, math.ceil(minutes / step - 1e-9) * step))


def rows(data: dict | None = None) -> list[dict]:
    """One row per notebook, in name order: stem, kind, run time (median, min, max, runs), study
    time, words, exercises."""
    data = load() if data is None else data
    out = []
    for stem in sorted(data["notebooks"]):
        e = data["notebooks"][stem]
        out.append(
            {
                "notebook": stem,
                "kind": e.get("kind", kind(stem)),
                "median_s": e["median"],
                "min_s": e["min"],
                "max_s": e["max"],
                "runs": e["runs"],
                "study_min": study_minutes(e, data["rule"]),
                "words": e["words"],
                "exercises": e["exercises"],
            }
        )
    return out


def frame(data: dict | None = None):
    """:func:`rows` as a pandas DataFrame indexed by notebook."""
    import pandas as pd

    return pd.DataFrame(rows(data)).set_index("notebook")


class Markdown(str):
    """A markdown string that a notebook renders as markdown (and prints as itself)."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return str(self)


def table(questions: dict[str, str] | None = None, data: dict | None = None) -> Markdown:
    """The map's table: per notebook its kind, run time (the median of its measured runs, in
    seconds), study time (minutes, by the rule) and exercises; with ``questions`` (a notebook
    stem, or its two-digit number, mapped to text) also the question it answers.
    """
    data = load() if data is None else data
    head = ["notebook", "kind"]
    head += ["question"] if questions else []
    head += ["run time (s)", "study time (min)", "exercises"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows(data):
        cells = [f"`{row['notebook']}`", row["kind"]]
        if questions:
            key = row["notebook"]
            cells.append(questions.get(key, questions.get(key[:2], "")))
        # the median only: the same shape however many runs were measured (nbval compares it)
        cells += [f"{row['median_s']:.0f}", str(row["study_min"]), str(row["exercises"])]
        lines.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))
