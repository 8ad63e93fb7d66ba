"""Learner copies: generated correctly, committed up to date, and runnable up to the first exercise."""

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import student  # noqa: E402  (scripts/student.py: a repository tool, not part of the package)
from kernel_start import start_with_retries  # noqa: E402  (scripts/kernel_start.py)

EXERCISE = '''def double(x):
    """Return twice x."""
    # BEGIN SOLUTION
    y = 2 * x
    return y
    # END SOLUTION'''


def test_solution_block_becomes_a_stub_at_the_same_indentation():
    stub = student.strip_solution(EXERCISE, 3)
    assert stub.splitlines() == [
        "def double(x):",
        '    """Return twice x."""',
        '    raise NotImplementedError("Exercise 3: implement double")',
    ]
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 3"):
        namespace["double"](1)


@pytest.mark.parametrize(
    "source",
    [
        "x = 1",
        "# BEGIN SOLUTION\nx = 1",
        "x = 1\n# END SOLUTION",
        "# BEGIN SOLUTION\n# BEGIN SOLUTION",
    ],
)
def test_broken_markers_are_reported(source):
    with pytest.raises(ValueError, match="exercise 1"):
        student.strip_solution(source, 1)


def test_learner_copy_clears_outputs_and_numbers_exercises():
    nb = nbformat.v4.new_notebook()
    plain = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    plain.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    first = nbformat.v4.new_code_cell(EXERCISE, metadata={"tags": ["exercise"]})
    second = nbformat.v4.new_code_cell(
        EXERCISE.replace("double", "twice"), metadata={"tags": ["exercise"]}
    )
    nb.cells = [plain, first, second]
    copy = student.learner_copy(nb)
    assert copy.cells[0].outputs == [] and copy.cells[0].execution_count is None
    assert "Exercise 1: implement double" in copy.cells[1].source
    assert "Exercise 2: implement twice" in copy.cells[2].source
    assert "y = 2 * x" in nb.cells[1].source  # the source notebook is untouched


def test_a_solution_in_an_untagged_cell_is_refused():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXERCISE)]  # the markers without the exercise tag
    with pytest.raises(ValueError, match="not tagged 'exercise'"):
        student.learner_copy(nb)


def test_no_learner_copy_carries_a_solution():
    for path in student.sources():
        text = student.render(path)
        assert student.BEGIN not in text and "END SOLUTION" not in text, path.name


def test_committed_learner_copies_are_current():
    assert student.main(["--check"]) == 0, "run `make student` and commit notebooks/exercises/"


def _cells_up_to_first_check(nb):
    """Cells up to the first exercise and the cell after it (its checker)."""
    for i, cell in enumerate(nb.cells):
        if student.is_exercise(cell):
            return nb.cells[: i + 2]
    return nb.cells


@pytest.mark.parametrize("path", sorted(student.TARGET_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_learner_copy_runs_up_to_its_first_exercise(path):
    nb = nbformat.read(path, as_version=4)
    if not any(student.is_exercise(c) for c in nb.cells):
        pytest.skip("no exercise in this notebook")
    nb.cells = _cells_up_to_first_check(nb)
    client = NotebookClient(
        nb,
        timeout=600,
        startup_timeout=180,  # a first kernel in a fresh environment, beside another test's
        kernel_name="python3",
        resources={"metadata": {"path": str(student.SOURCE_DIR)}},
    )
    try:
        start_with_retries(client.execute)()  # a kernel that dies before it answers ran nothing
    except CellExecutionError as err:  # only the stub may raise, and only in an exercise cell
        assert "NotImplementedError" in str(err), err
        failing = [
            c
            for c in nb.cells
            if any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ]
        assert all(student.is_exercise(c) for c in failing), err
