"""The null-twin registry and ``make falsify``: every twin can be swapped in, and a run reports
which asserts it broke.

A renamed package function would silently disable a twin whose target no longer exists, so the
registry is checked against the package and the notebooks here.
"""

import importlib.util
import json
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import twins  # noqa: E402

spec = importlib.util.spec_from_file_location("falsify", ROOT / "scripts" / "falsify.py")
falsify = importlib.util.module_from_spec(spec)
spec.loader.exec_module(falsify)

REGISTRY = twins.registry()
NOTEBOOKS = {p.stem: p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}


@pytest.mark.parametrize("twin", REGISTRY, ids=lambda t: t.name)
def test_every_twin_targets_a_function_that_exists_in_notebooks_that_exist(twin):
    _, _, original = twins.resolve(twin.target)
    assert callable(original), f"{twin.target} is not callable"
    assert callable(twin.make(original)), f"{twin.name}: make() must return a callable"
    assert twin.notebooks, f"{twin.name} is registered for no notebook"
    for stem in twin.notebooks:
        assert stem in NOTEBOOKS, f"{twin.name}: no notebook {stem}.ipynb"
        nb = nbformat.read(NOTEBOOKS[stem], as_version=4)
        falsify.robustness.setup_cell_index(nb)  # raises when there is no setup cell
        stop = (twin.stop_after or {}).get(stem)
        if stop is not None:
            assert any(stop in c.source for c in nb.cells), f"{twin.name}: {stop!r} not in {stem}"
    for stem in twin.stop_after or {}:
        assert stem in twin.notebooks, f"{twin.name}: stop_after names {stem}, not one of its own"


@pytest.mark.parametrize("stem", sorted(NOTEBOOKS))
def test_every_notebook_that_asserts_a_claim_has_a_twin(stem):
    asserts = falsify.robustness.notebook_asserts(nbformat.read(NOTEBOOKS[stem], as_version=4))
    claims = [a for a in asserts if not falsify.exempt(a["message"])]
    if claims:
        assert twins.for_notebook(stem), f"{stem} asserts claims but has no null twin"


def test_a_bad_target_is_refused():
    with pytest.raises(ValueError, match="module:attribute"):
        twins.Twin("x", ("00_map",), "hvnotes.datasets.add_label_tab", "nothing", lambda f: f)
    with pytest.raises(AttributeError, match="no attribute"):
        twins.resolve("hvnotes.datasets:no_such_function")


def test_apply_rebinds_the_original_everywhere(monkeypatch):
    # a package module, a second module that imported the function by name, and a notebook
    import hvnotes

    source = types.ModuleType("hvnotes._twin_source")
    source.score = lambda x: x + 1
    user = types.ModuleType("hvnotes._twin_user")
    user.score = source.score
    monkeypatch.setitem(sys.modules, source.__name__, source)
    monkeypatch.setitem(sys.modules, user.__name__, user)
    monkeypatch.setattr(hvnotes, "_twin_source", source, raising=False)
    twin = twins.Twin(
        "zero-score", ("00_map",), "hvnotes._twin_source:score", "everything", lambda f: lambda x: 0
    )
    monkeypatch.setattr(twins, "registry", lambda: [twin])
    original = source.score
    namespace = {"score": original, "other": len}
    twins.apply("zero-score", namespace)
    assert source.score(5) == 0 and user.score(5) == 0 and namespace["score"](5) == 0
    assert namespace["other"] is len


def test_exempt_labels():
    assert falsify.exempt("identity: tau = 0 gives the plain mean")
    assert falsify.exempt("Property: masks are boolean")
    assert not falsify.exempt("the AND-mask reaches 0.9 where its random twin stays at chance")


CELLS = [
    "import hvnotes\ndevice = hvnotes.setup(0)\nmethod = lambda: 1.0",
    'assert method() > 0.5, "the method works"\nassert True, "property: always"\nprint("after")',
    'value = method()\nassert value > 0.5 or value < -1, "still works"',
    'print("never reached with stop_after")',
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "toy.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), path
    )
    return path


def test_a_twin_run_records_every_assert_and_reports_what_it_broke(toy):
    twin_cell = "method = lambda: 0.0  # the twin: the method removed"
    run = falsify.robustness.run_one(
        toy, 0, "default", 60, after_setup=twin_cell, stop_after="still works", keep_going=True
    )
    held = {r["key"].split(" || ")[1]: r["held"] for r in run["records"]}
    assert held == {"'the method works'": False, "'property: always'": True, "'still works'": False}
    assert run["errors"] == []  # failing asserts were recorded, not raised: the cells went on
    run["twin"] = "method-removed"
    fake = twins.Twin("method-removed", ("toy",), "hvnotes:setup", "the method", lambda f: f)
    summary = _summary_with(toy, [run], fake)
    asserts = {a["message"]: a for a in summary["toy.ipynb"]["asserts"]}
    assert asserts["the method works"]["broken_by"] == ["method-removed"]
    assert asserts["property: always"]["exempt"] and not asserts["property: always"]["broken_by"]
    assert falsify.verdict(summary)["ok"]


def test_the_verdict_names_unbroken_asserts_and_idle_twins(toy):
    run = falsify.robustness.run_one(
        toy, 0, "default", 60, after_setup="pass", keep_going=True
    )  # a "twin" that removes nothing breaks nothing
    run["twin"] = "removes-nothing"
    fake = twins.Twin("removes-nothing", ("toy",), "hvnotes:setup", "nothing", lambda f: f)
    v = falsify.verdict(_summary_with(toy, [run], fake))
    assert not v["ok"]
    assert v["unbroken"]["toy.ipynb"] == ["the method works", "still works"]
    assert v["idle"]["toy.ipynb"] == ["removes-nothing"]


def _summary_with(path, runs, twin):
    original = falsify.twins.by_name
    falsify.twins.by_name = lambda name: twin
    try:
        return falsify.summarize([path], runs)
    finally:
        falsify.twins.by_name = original


def test_report_is_written(toy, tmp_path):
    summary = {
        "toy.ipynb": {
            "asserts": [
                {
                    "cell": 1,
                    "message": "claim",
                    "broken_by": ["t"],
                    "unreached": [],
                    "exempt": False,
                },
                {"cell": 2, "message": "orphan", "broken_by": [], "unreached": [], "exempt": False},
            ],
            "twins": [
                {
                    "name": "t",
                    "target": "m:f",
                    "removes": "x",
                    "broke": ["claim"],
                    "seconds": 3.0,
                    "errors": [],
                }
            ],
        }
    }
    target = tmp_path / "falsification.md"
    assert falsify.write_report(summary, 60.0, target) is False
    text = target.read_text()
    assert "| 2 | orphan | **none** ✗ |" in text and "| 1 | claim | `t` |" in text


def test_falsify_shards_merge_into_the_runs_of_one(tmp_path):
    # what each twin run returned (here invented: no kernel runs), split in two shards
    path = NOTEBOOKS["00_map"]
    jobs = [(path, t.name) for t in twins.for_notebook("00_map")]
    all_jobs = [[falsify._relative(p), name] for p, name in jobs]
    runs = {
        name: {"notebook": path.name, "twin": name, "records": [], "errors": [], "seconds": 1.0}
        for _, name in jobs
    }
    files = []
    for k in (1, 2):
        part = falsify.shard_jobs(jobs, k, 2)
        out = tmp_path / f"falsify-shard-{k}.json"
        out.write_text(
            json.dumps(
                {
                    "shard": f"{k}/2",
                    "notebooks": [falsify._relative(path)],
                    "jobs": all_jobs,
                    "machine": "m",
                    "wall": 1.0,
                    "runs": [runs[name] for _, name in part],
                }
            )
        )
        files.append(out)
    merged = falsify.merge(files)
    assert merged["runs"] == [runs[name] for _, name in jobs]  # every run once, in job order
    report = tmp_path / "falsification.md"
    falsify.write_report(
        falsify.summarize([path], merged["runs"]), 1.0, report, "m", {"n": 2, "machine_time": 2.0}
    )
    assert "Split into 2 shards" in report.read_text()
    with pytest.raises(SystemExit, match="shards 1/2 to 2/2"):
        falsify.merge(files[:1])
