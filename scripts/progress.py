"""Which exercises are done? Runs their checkers on the learner copies, never the experiments.

    python scripts/progress.py                                  # notebooks/exercises/
    python scripts/progress.py path/to/exercises --notebooks 02 03_rrr

``make progress`` runs this. For each learner notebook, one fresh kernel runs, in order: the
notebook's first code cell (its imports and ``hvnotes.setup``), the top-level ``import``
statements of the cells before its last exercise, then each exercise cell (a code cell tagged
``exercise``, see ``scripts/student.py``) followed by its checker cell (the next code cell, which
calls ``checks.…``). Training cells never run, so a notebook takes seconds. Each exercise is

* ``done``: its checker printed the ``✓`` line;
* ``not yet``: the stub still raises ``NotImplementedError`` (the checker says "not implemented
  yet" or "not registered yet");
* ``failing``: any other ``✗`` line or an exception, reported with its message.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import student  # noqa: E402  (scripts/student.py, beside this file)
from run_notebooks import KERNEL_ENV  # noqa: E402

DONE, NOT_YET, FAILING = "done", "not yet", "failing"
NOT_YET_WORDS = ("not implemented yet", "not registered yet")
CHECKER_CALL = re.compile(r"\bchecks\.\w+\(")


class Exercise(NamedTuple):
    number: int  # as the learner copy numbers it ("Exercise 2: ...")
    source: str
    checker: str


class Row(NamedTuple):
    notebook: str
    exercise: int
    status: str
    message: str


def exercises(nb: nbformat.NotebookNode, name: str) -> list[Exercise]:
    """Each exercise cell of ``nb`` with its checker cell (the next code cell).

    Raises ``ValueError`` naming the notebook and the exercise when no checker follows one.
    """
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    found = []
    for index, cell in enumerate(code):
        if not student.is_exercise(cell):
            continue
        number = len(found) + 1
        checker = code[index + 1].source if index + 1 < len(code) else ""
        if not CHECKER_CALL.search(checker):
            raise ValueError(f"{name}: exercise {number} is not followed by a checks.… cell")
        found.append(Exercise(number, cell.source, checker))
    return found


def import_statements(source: str) -> list[str]:
    """The top-level ``import`` statements of one cell's source (magics and shell lines skipped)."""
    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    try:
        tree = ast.parse(code)
    except SyntaxError:  # not plain Python: nothing we can safely take from it
        return []
    imports = (ast.Import, ast.ImportFrom)
    return [ast.get_source_segment(code, node) for node in tree.body if isinstance(node, imports)]


def setup_sources(nb: nbformat.NotebookNode) -> list[str]:
    """What runs before the exercises: the first code cell, then the imports of later cells.

    Only the cells before the last exercise are read, and of them only their ``import`` lines,
    so that names like ``F`` or ``math`` exist without running any experiment.
    """
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    last = max((i for i, cell in enumerate(code) if student.is_exercise(cell)), default=-1)
    skipped = {i + 1 for i, cell in enumerate(code) if student.is_exercise(cell)}  # checkers
    imports = []
    for index, cell in enumerate(code[1:last], start=1):
        if not student.is_exercise(cell) and index not in skipped:
            imports += [s for s in import_statements(cell.source) if s not in imports]
    return [code[0].source, "\n".join(imports)] if code else []


def _error(outputs) -> nbformat.NotebookNode | None:
    return next((o for o in outputs if o.get("output_type") == "error"), None)


def _stdout(outputs) -> str:
    return "".join(
        o.get("text", "")
        for o in outputs
        if o.get("output_type") == "stream" and o.name == "stdout"
    )


def classify(exercise_outputs: list, checker_outputs: list) -> tuple[str, str]:
    """``(status, message)`` of one exercise from the outputs of its cell and its checker cell."""
    for outputs in (exercise_outputs, checker_outputs):
        error = _error(outputs)
        if error is None:
            continue
        if error.ename == "NotImplementedError":
            return NOT_YET, error.evalue or "NotImplementedError"
        message = f"{error.ename}: {error.evalue}"
        if error.ename == "KeyboardInterrupt":  # nbclient interrupts a cell that runs too long
            message = "interrupted: the cell ran past the time limit (--timeout seconds per cell)"
        if error.ename == "NameError":  # a typo, or a name only the skipped cells define
            message += " (make progress runs only the setup, exercise and checker cells)"
        return FAILING, message
    lines = _stdout(checker_outputs).splitlines()
    verdict = next((line for line in lines if line.startswith(("✓", "✗"))), None)
    if verdict is None:
        return FAILING, "the checker printed no ✓ or ✗ line"
    if verdict.startswith("✓"):
        return DONE, verdict
    details = [line.strip().removeprefix("- ") for line in lines if line.startswith("  - ")]
    stub = details and all("not implemented yet" in d for d in details)
    if stub or any(words in verdict for words in NOT_YET_WORDS):
        return NOT_YET, verdict
    return FAILING, verdict + (f" — {details[0]}" if details else "")


def check_notebook(path: Path, timeout: int = 120) -> list[Row]:
    """Run the setup, every exercise and its checker of one learner notebook in a fresh kernel."""
    nb = nbformat.read(path, as_version=4)
    found = exercises(nb, path.name)
    if not found:
        return []
    setup = setup_sources(nb)
    cells = [nbformat.v4.new_code_cell(source) for source in setup]
    for exercise in found:
        cells += [
            nbformat.v4.new_code_cell(exercise.source),
            nbformat.v4.new_code_cell(exercise.checker),
        ]
    run = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    failure = execute(run, path.parent, timeout)
    if failure is not None:
        return [Row(path.stem, e.number, FAILING, failure) for e in found]
    setup_error = next((e for c in run.cells[: len(setup)] if (e := _error(c.outputs))), None)
    rows = []
    for i, exercise in enumerate(found):
        if setup_error is not None:  # nothing after a broken setup cell says anything
            status, message = FAILING, f"setup failed: {setup_error.ename}: {setup_error.evalue}"
        else:
            cell, checker = run.cells[len(setup) + 2 * i : len(setup) + 2 * i + 2]
            status, message = classify(cell.outputs, checker.outputs)
        rows.append(Row(path.stem, exercise.number, status, message))
    return rows


def execute(run: nbformat.NotebookNode, folder: Path, timeout: int) -> str | None:
    """Run the cells of ``run`` in order in a fresh kernel started in ``folder``, keeping each
    cell's outputs and errors; return why the kernel could not run them, or ``None``."""
    client = NotebookClient(
        run,
        timeout=timeout,
        startup_timeout=120,
        kernel_name="python3",
        allow_errors=True,  # one failing exercise must not hide the others
        interrupt_on_timeout=True,  # a learner's endless loop fails its own exercise only
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # the table, not the kernel's notices
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        client.execute(env={**os.environ, **KERNEL_ENV})
    except Exception as err:  # the kernel did not start, or died
        return f"the kernel failed: {type(err).__name__}: {err}".splitlines()[0]
    return None


def progress(paths: list[Path], timeout: int = 120) -> list[Row]:
    """One row per exercise of the learner notebooks at ``paths``, one kernel per notebook."""
    rows = []
    for path in paths:
        print(f"checking {path.name} ...", file=sys.stderr, flush=True)
        rows += check_notebook(path, timeout)
    return rows


def select(directory: Path, names: list[str] | None) -> list[Path]:
    """The learner notebooks in ``directory``, or those ``names`` pick (``02``, ``02_and_mask``,
    ``02_and_mask.ipynb``). Raises ``ValueError`` naming the argument when one matches nothing."""
    if not directory.is_dir():
        raise ValueError(f"exercises: {directory} is not a folder (`make student` writes it)")
    paths = sorted(directory.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return paths
    chosen = []
    for name in names:
        match = [p for p in paths if name in (p.name, p.stem) or p.stem.startswith(f"{name}_")]
        if not match:
            raise ValueError(f"--notebooks: no learner notebook {name!r} in {directory}")
        chosen += [p for p in match if p not in chosen]
    return chosen


def table(rows: list[Row]) -> str:
    header = Row("notebook", "exercise", "status", "message")
    width = max(len(r.notebook) for r in [header, *rows])
    lines = [
        f"{r.notebook:<{width}}  {r.exercise!s:>8}  {r.status:<7}  {r.message}"
        for r in [header, *rows]
    ]
    done = sum(r.status == DONE for r in rows)
    failing = sum(r.status == FAILING for r in rows)
    lines.append(f"\n{done} of {len(rows)} exercises done, {failing} failing")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "exercises", nargs="?", type=Path, default=student.TARGET_DIR, help="learner copies"
    )
    parser.add_argument("--notebooks", nargs="+", metavar="NAME", help="e.g. 02 03_rrr")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    try:
        paths = select(args.exercises, args.notebooks)
    except ValueError as err:
        parser.error(str(err))
    print(table(progress(paths, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
