"""Each notebook is a lesson a learner finishes in its workshop slot, with a deep dive beside it.

COURSE.md's shape of a lesson: at most 45 cells and 2 500 words of prose, at least three
exercises, and — where a deep dive ``NN_name_deep_dive.ipynb`` sits beside it — a last section
"Going deeper" that names it. (Run times are checked against the measured times in
``test_times.py``.)
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DEEP_DIVE = "_deep_dive"
LESSONS = [p for p in NOTEBOOKS if not p.stem.endswith(DEEP_DIVE)]
DEEP_DIVES = [p for p in NOTEBOOKS if p.stem.endswith(DEEP_DIVE)]
MAX_CELLS, MAX_WORDS, MIN_EXERCISES = 45, 2500, 3


def prose_words(nb) -> int:
    return sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")


def exercises(nb) -> int:
    return sum(1 for c in nb.cells if "exercise" in c.metadata.get("tags", []))


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_fits_its_slot(path):
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) <= MAX_CELLS, f"{path.name}: {len(nb.cells)} cells (at most {MAX_CELLS})"
    words = prose_words(nb)
    assert words <= MAX_WORDS, f"{path.name}: {words} words of prose (at most {MAX_WORDS})"
    n = exercises(nb)
    assert n >= MIN_EXERCISES, f"{path.name}: {n} exercises (at least {MIN_EXERCISES})"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_with_a_deep_dive_ends_by_pointing_to_it(path):
    deep_dive = path.with_name(path.stem + DEEP_DIVE + ".ipynb")
    if not deep_dive.exists():
        pytest.skip(f"{path.name} has no deep dive")
    nb = nbformat.read(path, as_version=4)
    headings = [
        (i, line)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if re.match(r"#{2}\s", line)
    ]
    going_deeper = [i for i, line in headings if "going deeper" in line.lower()]
    assert going_deeper, f"{path.name}: no '## Going deeper' section"
    text = nb.cells[going_deeper[-1]].source
    assert deep_dive.stem in text, f"{path.name}: 'Going deeper' does not name {deep_dive.name}"


@pytest.mark.parametrize("path", DEEP_DIVES, ids=lambda p: p.stem)
def test_every_deep_dive_sits_beside_its_lesson(path):
    lesson = path.with_name(path.stem.removesuffix(DEEP_DIVE) + ".ipynb")
    assert lesson.exists(), f"{path.name} has no lesson {lesson.name}"
