"""`make progress`: each exercise of the learner copies is done, not yet done, or failing.

The classification is tested on hand-made cell outputs; one test runs the tool for real on fresh
learner copies of notebooks 01 and 02 (two kernels per run, seconds each, no experiment).
"""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import student  # noqa: E402  (scripts/student.py)

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("progress", ROOT / "scripts" / "progress.py")
progress = importlib.util.module_from_spec(spec)
spec.loader.exec_module(progress)


def stdout(text):
    return [nbformat.v4.new_output("stream", name="stdout", text=text)]


def error(ename, evalue):
    return [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]


@pytest.mark.parametrize(
    ("exercise", "checker", "status", "message"),
    [
        ([], stdout("✓ and_mask: 7/7 checks passed\n"), "done", "✓ and_mask: 7/7 checks passed"),
        (
            [],
            stdout(
                "✗ and_mask: 0/2 checks passed\n  - a: not implemented yet\n  - b: not implemented yet\n"
            ),
            "not yet",
            "✗ and_mask: 0/2 checks passed",
        ),
        (
            [],
            stdout("✗ and_mask: 1/2 checks passed\n  - tau = 0 keeps every component: 3 differ\n"),
            "failing",
            "✗ and_mask: 1/2 checks passed — tau = 0 keeps every component: 3 differ",
        ),
        (
            [],
            stdout(
                "✗ prediction: not registered yet (the scoring below leaves your column empty)\n"
            ),
            "not yet",
            "✗ prediction: not registered yet (the scoring below leaves your column empty)",
        ),
        ([], error("NotImplementedError", "Exercise 1: implement f"), "not yet", "Exercise 1"),
        (error("SyntaxError", "invalid syntax"), [], "failing", "SyntaxError: invalid syntax"),
        ([], error("NameError", "name 'x' is not defined"), "failing", "only the setup"),
        ([], error("KeyboardInterrupt", ""), "failing", "time limit"),
        ([], stdout("hello\n"), "failing", "no ✓ or ✗ line"),
    ],
    ids=[
        "passed",
        "stub",
        "wrong",
        "prediction-not-registered",
        "stub-raises",
        "broken-cell",
        "unknown-name",
        "timeout",
        "no-verdict",
    ],
)
def test_checker_outputs_are_classified(exercise, checker, status, message):
    got_status, got_message = progress.classify(exercise, checker)
    assert got_status == status
    assert message in got_message


def test_setup_takes_the_first_cell_and_only_the_imports_of_later_cells():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import torch\nimport hvnotes\ndevice = hvnotes.setup(0)"),
            nbformat.v4.new_code_cell(
                "%matplotlib inline\nimport math\nmodel = train_for_an_hour()"
            ),
            nbformat.v4.new_code_cell(
                "import torch.nn.functional as F\ndef f(x):\n    return x",
                metadata={"tags": ["exercise"]},
            ),
            nbformat.v4.new_code_cell("ok = checks.check_f(f)\nimport never_run_twice"),
            nbformat.v4.new_code_cell("import math\nfrom torch import nn\nresults = sweep()"),
            nbformat.v4.new_code_cell("def g(x):\n    return x", metadata={"tags": ["exercise"]}),
            nbformat.v4.new_code_cell("ok = checks.check_g(g)"),
            nbformat.v4.new_code_cell("import after_the_last_exercise"),
        ]
    )
    first, imports = progress.setup_sources(nb)
    assert first == nb.cells[0].source
    assert imports.splitlines() == ["import math", "from torch import nn"]
    found = progress.exercises(nb, "toy.ipynb")
    assert [(e.number, e.checker) for e in found] == [
        (1, nb.cells[3].source),
        (2, "ok = checks.check_g(g)"),
    ]


def test_an_exercise_without_a_checker_is_an_error_that_names_it():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import hvnotes"),
            nbformat.v4.new_code_cell("def f(x):\n    return x", metadata={"tags": ["exercise"]}),
            nbformat.v4.new_code_cell("print(f(1))"),
        ]
    )
    with pytest.raises(ValueError, match="toy.ipynb: exercise 1"):
        progress.exercises(nb, "toy.ipynb")


@pytest.mark.parametrize("path", student.sources(), ids=lambda p: p.stem)
def test_every_exercise_of_the_course_has_its_checker(path):
    nb = student.learner_copy(nbformat.read(path, as_version=4))
    tagged = [c for c in nb.cells if student.is_exercise(c)]
    assert len(progress.exercises(nb, path.name)) == len(tagged)


def test_notebooks_are_chosen_by_number_or_name(tmp_path):
    for name in ("01_a.ipynb", "02_b.ipynb", "12_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in progress.select(tmp_path, ["02", "01_a.ipynb"])] == [
        "02_b.ipynb",
        "01_a.ipynb",
    ]
    with pytest.raises(ValueError, match="--notebooks: no learner notebook '2'"):
        progress.select(tmp_path, ["2"])
    with pytest.raises(ValueError, match="exercises: .* is not a folder"):
        progress.select(tmp_path / "missing", None)


def _solution(stem: str, number: int) -> str:
    """The source of exercise ``number`` of the full notebook ``stem`` (its reference solution)."""
    nb = nbformat.read(student.SOURCE_DIR / f"{stem}.ipynb", as_version=4)
    return [c.source for c in nb.cells if student.is_exercise(c)][number - 1]


def _replace_exercise(path: Path, number: int, source: str) -> None:
    nb = nbformat.read(path, as_version=4)
    [c for c in nb.cells if student.is_exercise(c)][number - 1].source = source
    nbformat.write(nb, path)


def test_fresh_copies_are_not_yet_done_and_a_pasted_solution_is(tmp_path, capsys):
    stems = ["01_consistency_of_minima", "02_and_mask"]
    for stem in stems:
        source = student.SOURCE_DIR / f"{stem}.ipynb"
        (tmp_path / source.name).write_text(student.render(source))

    assert progress.main([str(tmp_path), "--notebooks", "01", "02"]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [line for line in printed if line.startswith(tuple(stems))]
    assert len(rows) == 6 and all("  not yet  " in row for row in rows), printed
    assert "0 of 6 exercises done, 0 failing" in printed

    _replace_exercise(tmp_path / "02_and_mask.ipynb", 1, _solution("02_and_mask", 1))
    wrong = "def my_quadratic_inconsistency(hessians, eps):\n    return eps  # forgot the max"
    _replace_exercise(tmp_path / "01_consistency_of_minima.ipynb", 1, wrong)
    rows = progress.progress(sorted(tmp_path.glob("*.ipynb")))
    status = {(r.notebook, r.exercise): r.status for r in rows}
    assert status == {
        ("01_consistency_of_minima", 1): "failing",
        ("01_consistency_of_minima", 2): "not yet",
        ("01_consistency_of_minima", 3): "not yet",
        ("02_and_mask", 1): "done",
        ("02_and_mask", 2): "not yet",
        ("02_and_mask", 3): "not yet",
    }, rows
    assert (
        rows[0].message.startswith("✗ quadratic_inconsistency: ") and "expected" in rows[0].message
    )
    done = next(r for r in rows if (r.notebook, r.exercise) == ("02_and_mask", 1))
    assert done.message == "✓ and_mask: 7/7 checks passed"
