"""Write learner copies of the course notebooks, with the exercise solutions taken out.

    python scripts/student.py            # (re)write notebooks/exercises/  (make student)
    python scripts/student.py --check    # exit 1 if the committed copies are out of date

The tested notebooks in ``notebooks/`` are the single source. An exercise is a code cell tagged
``exercise`` whose reference solution sits between two marker lines::

    def and_mask(env_grads, tau):
        "docstring the learner keeps"
        # BEGIN SOLUTION
        ...reference code...
        # END SOLUTION

In the learner's copy the lines between the markers (markers included) become one
``raise NotImplementedError("Exercise N: ...")`` at the same indentation, and every output is
cleared. Nothing else changes, so the copy stays in step with the tested notebook.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "notebooks"
TARGET_DIR = SOURCE_DIR / "exercises"
EXERCISE_TAG = "exercise"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


def strip_solution(source: str, number: int) -> str:
    """Replace every ``BEGIN``/``END SOLUTION`` block of one cell's source by a stub.

    Raises ``ValueError`` when the markers are missing, unbalanced or nested.
    """
    lines, out, inside, found = source.splitlines(), [], False, False
    name = re.search(r"def (\w+)\(", source)
    what = f"implement {name.group(1)}" if name else "write your solution here"
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"exercise {number}: nested '{BEGIN}'")
            inside, found = True, True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("Exercise {number}: {what}")')
        elif stripped == END:
            if not inside:
                raise ValueError(f"exercise {number}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"exercise {number}: '{BEGIN}' without '{END}'")
    if not found:
        raise ValueError(
            f"exercise {number}: a cell tagged '{EXERCISE_TAG}' has no '{BEGIN}' marker"
        )
    return "\n".join(out)


def is_exercise(cell) -> bool:
    return cell.cell_type == "code" and EXERCISE_TAG in cell.metadata.get("tags", [])


def learner_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The learner's version of one notebook: solutions stubbed, outputs cleared."""
    copy = nbformat.from_dict(nb)
    number = 0
    for index, cell in enumerate(copy.cells):
        if cell.cell_type != "code":
            continue
        if is_exercise(cell):
            number += 1
            cell.source = strip_solution(cell.source, number)
        elif BEGIN in cell.source:
            raise ValueError(
                f"cell {index} holds '{BEGIN}' but is not tagged '{EXERCISE_TAG}': "
                "its solution would reach the learner"
            )
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    return copy


def render(path: Path) -> str:
    """The learner copy of the notebook at ``path``, as the exact text that is committed."""
    return nbformat.writes(learner_copy(nbformat.read(path, as_version=4))) + "\n"


def sources() -> list[Path]:
    return sorted(SOURCE_DIR.glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write learner copies of the course notebooks.")
    parser.add_argument("--check", action="store_true", help="only verify the committed copies")
    args = parser.parse_args(argv)
    TARGET_DIR.mkdir(exist_ok=True)
    stale = []
    expected = {}
    for path in sources():
        expected[path.name] = render(path)
    for name, text in expected.items():
        target = TARGET_DIR / name
        if target.exists() and target.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            target.write_text(text)
    extra = sorted(p.name for p in TARGET_DIR.glob("*.ipynb") if p.name not in expected)
    if args.check:
        if stale or extra:
            print(f"learner copies out of date: {', '.join(stale + extra)}; run `make student`")
            return 1
        print(f"learner copies up to date ({len(expected)} notebooks)")
        return 0
    for name in extra:
        (TARGET_DIR / name).unlink()
    print(f"wrote {len(stale)} learner copies, removed {len(extra)}, {len(expected)} in total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
