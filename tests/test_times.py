"""Every time the course quotes comes from the measured times in ``hvnotes/times.json``.

* The data file is complete and current: it names only notebooks that exist, every notebook has
  a measured time, and its words and exercises are the notebooks' own (``make times`` re-counts).
* The budgets of COURSE.md hold by the data file: each lesson at most 60 s, each deep dive at
  most 150 s, all deep dives together at most 8 minutes (the medians of the measured runs).
* Every time quoted in the marked blocks of the README, the workshop guide and the notebooks
  (and in notebook outputs of ``hvnotes.times.table()``) lies within the data file's spread.
* The tools themselves: the study-time rule against a hand computation, the block parser
  against rendered and altered tables, the shard split, the recorder.
"""

import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from hvnotes import times as hvtimes

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("times_tool", ROOT / "scripts" / "times.py")
tool = importlib.util.module_from_spec(spec)
sys.modules["times_tool"] = tool  # dataclasses look their module up while the class is built
spec.loader.exec_module(tool)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DATA = hvtimes.load()
LESSON_BUDGET, DEEP_DIVE_BUDGET, ALL_DEEP_DIVES_BUDGET = 60, 150, 8 * 60
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "instructors.md", *NOTEBOOKS]


# ----------------------------------------------------------------------------- the data file


def test_the_data_file_names_only_notebooks_that_exist():
    stems = {p.stem for p in NOTEBOOKS}
    assert set(DATA["notebooks"]) <= stems, set(DATA["notebooks"]) - stems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_a_measured_time(path):
    assert path.stem in DATA["notebooks"], f"{path.name} has no measured time: run `make bench`"


@pytest.mark.parametrize("stem", sorted(DATA["notebooks"]))
def test_each_entry_says_what_was_measured(stem):
    e = DATA["notebooks"][stem]
    assert e["kind"] == hvtimes.kind(stem)
    assert isinstance(e["runs"], int) and e["runs"] >= 1
    assert 0 < e["min"] <= e["median"] <= e["max"], e
    assert e["date"] and e["machine"] and e["source"], e


@pytest.mark.parametrize("stem", sorted(DATA["notebooks"]))
def test_words_and_exercises_are_the_notebooks_own(stem):
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    if not path.exists():
        pytest.skip("no such notebook (the test above fails)")
    e = DATA["notebooks"][stem]
    assert (e["words"], e["exercises"]) == tool.counts(path), (
        f"{stem}: the data file counts {e['words']} words and {e['exercises']} exercises; "
        "run `make times` to re-count"
    )


# ----------------------------------------------------------------------------- the budgets


@pytest.mark.parametrize("stem", [s for s, e in DATA["notebooks"].items() if e["kind"] == "lesson"])
def test_a_lesson_runs_within_its_budget(stem):
    e = DATA["notebooks"][stem]
    assert e["median"] <= LESSON_BUDGET, (
        f"{stem}: median {e['median']:.0f} s over {e['runs']} runs ({e['source']}, {e['date']}); "
        f"a lesson runs in at most {LESSON_BUDGET} s"
    )


@pytest.mark.parametrize(
    "stem", [s for s, e in DATA["notebooks"].items() if e["kind"] == "deep dive"]
)
def test_a_deep_dive_runs_within_its_budget(stem):
    e = DATA["notebooks"][stem]
    assert e["median"] <= DEEP_DIVE_BUDGET, (
        f"{stem}: median {e['median']:.0f} s; a deep dive runs in at most {DEEP_DIVE_BUDGET} s"
    )


def test_all_deep_dives_together_within_their_budget():
    deep = {s: e["median"] for s, e in DATA["notebooks"].items() if e["kind"] == "deep dive"}
    missing = [p.stem for p in NOTEBOOKS if p.stem.endswith("_deep_dive") and p.stem not in deep]
    assert not missing, f"deep dives without a measured time: {missing}"
    assert sum(deep.values()) <= ALL_DEEP_DIVES_BUDGET, (
        f"the deep dives take {sum(deep.values()):.0f} s in all (at most {ALL_DEEP_DIVES_BUDGET})"
    )


# ----------------------------------------------------------------------------- quoted times


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_quoted_time_agrees_with_the_data_file(path):
    quotes = tool.document_quotes(path)
    problems = tool.disagreements(quotes, DATA)
    assert not problems, "\n".join(problems) + "\n(run `make times` to refresh the blocks)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_promises_a_run_time_its_measurement_contradicts(path):
    problems = tool.broken_promises(path, DATA)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the workshop plan

PLAN_ROW = re.compile(r"^\| (\d):(\d\d)–(\d):(\d\d) \| ([^|]+?) \|", re.M)
WORKSHOP_MINUTES, SLOT_SHARE_LIVE = 180, 0.2


def test_the_workshop_plan_fits_three_hours_with_a_break():
    """docs/instructors.md: contiguous slots from 0:00 to at most 3:00, one break, every lesson in
    a slot, and each lesson's live run (its measured median) a small part of its slot."""
    rows = [
        (int(h1) * 60 + int(m1), int(h2) * 60 + int(m2), name.strip())
        for h1, m1, h2, m2, name in PLAN_ROW.findall((ROOT / "docs" / "instructors.md").read_text())
    ]
    assert rows and rows[0][0] == 0, rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(rows)), f"slots leave gaps: {rows}"
    assert rows[-1][1] <= WORKSHOP_MINUTES, f"the plan ends at {rows[-1][1]} min"
    assert any(name == "break" and end - start >= 10 for start, end, name in rows), rows
    lessons = sorted(p.stem for p in NOTEBOOKS if hvtimes.kind(p.stem) == "lesson")
    slots = {name.split()[0]: end - start for start, end, name in rows if name != "break"}
    assert sorted(slots) == [stem[:2] for stem in lessons], (slots, lessons)
    for stem in lessons:
        live = DATA["notebooks"][stem]["median"] / 60
        assert live <= SLOT_SHARE_LIVE * slots[stem[:2]], (
            f"{stem} runs {live:.1f} min live in a {slots[stem[:2]]}-minute slot"
        )


# ----------------------------------------------------------------------------- the tools

ENTRY = {
    "kind": "lesson",
    "median": 60.0,
    "min": 50.0,
    "max": 90.0,
    "runs": 5,
    "date": "2026-12-05",
    "machine": "test",
    "source": "test",
    "words": 240,
    "exercises": 2,
}
TOY = {
    "rule": dict(hvtimes.RULE),
    "notebooks": {
        "01_toy": ENTRY,
        "01_toy_deep_dive": ENTRY
        | {
            "kind": "deep dive",
            "median": 100.0,
            "min": 100.0,
            "max": 100.0,
            "runs": 1,
            "words": 1200,
            "exercises": 0,
        },
    },
}


def test_study_time_follows_the_stated_rule():
    # 240 words at 120 a minute = 2 min, 2 exercises x 5 = 10 min, 60 s run = 1 min: 13 -> 15
    assert hvtimes.study_minutes(ENTRY, hvtimes.RULE) == 15
    # 1200 words = 10 min + 100 s = 11.67 min -> 15; a 600 s run would make it 20
    deep = TOY["notebooks"]["01_toy_deep_dive"]
    assert hvtimes.study_minutes(deep, hvtimes.RULE) == 15
    assert hvtimes.study_minutes(deep, hvtimes.RULE, seconds=600) == 20
    assert (
        "120 words a minute" in hvtimes.rule_text()
        and "5 minutes per exercise" in hvtimes.rule_text()
    )
    with pytest.raises(ValueError, match="words"):
        hvtimes.study_minutes(ENTRY | {"words": -1})


@pytest.mark.parametrize("arg", ["table", "guide", "01_toy", "01_toy_deep_dive"])
def test_what_is_rendered_agrees_and_a_changed_number_does_not(arg):
    block = f"<!-- times:start {arg} -->\n{tool.render(arg, TOY)}\n<!-- times:end -->"
    quotes = tool.quotes_in(block, arg)
    assert quotes, f"the {arg} block quotes no time"
    assert not tool.disagreements(quotes, TOY)
    runs = [q for q in quotes if q.quantity == "run"]
    assert {q.quantity for q in quotes} == {"run", "study"}
    # a run time doubled, or a study time 10 minutes off, is a disagreement
    slower = block.replace(tool.render(arg, TOY), tool.render(arg, _scaled(TOY, 2.0)))
    assert tool.disagreements(tool.quotes_in(slower, arg), TOY), f"{arg}: a doubled time passed"
    assert runs


def _scaled(data: dict, factor: float) -> dict:
    scaled = json.loads(json.dumps(data))
    for e in scaled["notebooks"].values():
        for key in ("median", "min", "max"):
            e[key] *= factor
        e["words"] *= 3  # study time moves too
    return scaled


def test_the_map_table_is_read_back_by_the_checker():
    table = hvtimes.table({"01": "a question"}, data=TOY)
    assert table._repr_markdown_() == str(table) and "a question" in table
    quotes = tool.quotes_in_table(str(table), "map")
    assert {q.subject for q in quotes} == {"01_toy", "01_toy_deep_dive"}
    assert not tool.disagreements(quotes, TOY)
    assert tool.disagreements([tool.Quote("01_toy", "run", 30.0, 0.5, "map")], TOY)
    assert tool.disagreements([tool.Quote("02_gone", "run", 30.0, 0.5, "map")], TOY)


def test_rewrite_fills_the_blocks_and_leaves_the_rest():
    text = "intro\n<!-- times:start guide -->\nstale\n<!-- times:end -->\nafter 99 s\n"
    new = tool.rewrite(text, TOY)
    assert new.startswith("intro\n") and new.endswith("after 99 s\n") and "stale" not in new
    assert tool.rewrite(new, TOY) == new
    inline = "Time: <!-- times:start 01_toy --> old <!-- times:end -->."
    assert tool.rewrite(inline, TOY) == (
        f"Time: <!-- times:start 01_toy --> {tool.render_line('01_toy', TOY)} <!-- times:end -->."
    )


def test_the_shard_split_covers_every_job_once_and_balances_them():
    weights = {f"job{i}": w for i, w in enumerate([90, 80, 70, 40, 30, 30, 20, 10, 5, 5])}
    for n in (1, 2, 3, 4):
        shards = tool.split(list(weights), weights.get, n)
        assert sorted(j for s in shards for j in s) == sorted(weights)
        loads = [sum(weights[j] for j in s) for s in shards]
        assert max(loads) - min(loads) <= max(weights.values()), loads
        assert shards == tool.split(list(reversed(weights)), weights.get, n)  # deterministic
    assert tool.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(ValueError, match="shard"):
            tool.parse_shard(bad)


def test_longest_first_uses_the_measured_times():
    order = tool.longest_first(
        ["n/01_toy.ipynb", "n/01_toy_deep_dive.ipynb", "n/02_new.ipynb"], TOY
    )
    # a notebook not yet measured counts as the longest
    assert order == ["n/02_new.ipynb", "n/01_toy_deep_dive.ipynb", "n/01_toy.ipynb"]


def test_record_stores_the_runs_and_forgets_notebooks_that_are_gone(tmp_path):
    def notebook(name, words):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("w " * words)])
        nb.cells.append(nbformat.v4.new_code_cell("pass", metadata={"tags": ["exercise"]}))
        nbformat.write(nb, tmp_path / name)
        return tmp_path / name

    data = tmp_path / "times.json"
    data.write_text(json.dumps({"notebooks": {"09_gone": ENTRY}}))
    path = notebook("01_toy.ipynb", 30)
    stored = tool.record({path: [12.0, 10.0, 20.0]}, "a test", data, "a machine", "2026-12-05")
    assert set(stored["notebooks"]) == {"01_toy"}
    e = hvtimes.load(data)["notebooks"]["01_toy"]
    assert (e["median"], e["min"], e["max"], e["runs"]) == (12.0, 10.0, 20.0, 3)
    assert (e["words"], e["exercises"], e["kind"]) == (30, 1, "lesson")
    assert hvtimes.load(data)["rule"] == hvtimes.RULE


@pytest.mark.parametrize(
    ("phrase", "low", "high"),
    [
        ("the notebook runs in under two minutes on a laptop", 0, 120),
        ("the code runs in well under a minute", 0, 60),
        ("The notebook runs in about a minute on", 30, 120),
        ("this lesson takes 40 s", 20, 80),
        ("the lesson runs in a minute or two", 30, 240),
    ],
)
def test_run_time_promises_in_prose_are_read(phrase, low, high):
    ((_, got_low, got_high),) = tool.run_promises(phrase)
    assert (got_low, got_high) == (low, high)


def test_promises_inside_marked_blocks_and_other_durations_are_not_read():
    assert not tool.run_promises(
        "<!-- times:start 01_toy -->the notebook runs in 3 s<!-- times:end -->"
    )
    assert not tool.run_promises(
        "we train for 10 epochs; the sweep of 4 settings; 5 minutes per exercise"
    )
