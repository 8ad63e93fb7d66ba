"""Build the course's static site with Jupyter Book 1.x, offline, from the committed outputs.

    python scripts/build_book.py      # -> build/book/_build/html/index.html

Copies ``book/`` (config and table of contents), ``README.md`` as the intro page, the workshop
guide, the robustness and falsification reports and the executed notebooks into ``build/book-src``, then runs
``jupyter-book build`` with warnings as errors. Notebooks listed in the table of contents but not
yet written are left out of it. MathJax ships with the site (``sphinx-mathjax-offline``), so
formulas typeset without a network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "build" / "book-src"
OUT = ROOT / "build" / "book"
DOCS = (
    "instructors.md",
    "robustness.md",
    "falsification.md",
)  # pages of the site that live in docs/
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# `make robustness` writes docs/robustness.md; until a checkout has one, the site says so.
ROBUSTNESS_STUB = """# Robustness of the course's claims

No robustness report in this checkout yet. `make robustness` runs every notebook under base seeds
0-4 and each float path of the machine, and writes the report to `docs/robustness.md`: for each
assert of each notebook, in how many runs it held, and the spread of what it measured.
"""


FALSIFICATION_STUB = """# Falsification: which null twin breaks which claim

No falsification report in this checkout yet. `make falsify` runs every notebook once per null twin
of its methods (`scripts/twins/`) and writes the report to `docs/falsification.md`: for each assert,
the twins that broke it; for each twin, the asserts it broke.
"""


def intro_text(readme: str) -> str:
    """The README as the site's intro: its links to ``docs/<page>.md`` point at the site's pages."""
    pages = "|".join(re.escape(name) for name in DOCS)
    return re.sub(rf"\]\(docs/({pages})([#)])", r"](\1\2", readme)


def without_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget state and widget views (frozen progress bars of a run, never a result).

    On the site they would be dead boxes that load the widget manager from a CDN.
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    return nb


def copy_sources() -> None:
    SRC.mkdir(parents=True)
    shutil.copy(ROOT / "book" / "_config.yml", SRC)
    (SRC / "intro.md").write_text(intro_text((ROOT / "README.md").read_text()))
    for name in DOCS:
        if (ROOT / "docs" / name).exists():
            shutil.copy(ROOT / "docs" / name, SRC / name)
    for name, stub in (
        ("robustness.md", ROBUSTNESS_STUB),
        ("falsification.md", FALSIFICATION_STUB),
    ):
        if not (SRC / name).exists():
            (SRC / name).write_text(stub)
    for notebook in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        nb = without_widgets(nbformat.read(notebook, as_version=4))
        nbformat.write(nb, SRC / notebook.name)
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    present = {p.stem for p in SRC.iterdir()}
    toc["chapters"] = [c for c in toc["chapters"] if c["file"] in present]
    (SRC / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))


def main() -> int:
    shutil.rmtree(SRC, ignore_errors=True)
    shutil.rmtree(OUT, ignore_errors=True)
    copy_sources()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jupyter_book),
        "build",
        str(SRC),
        "--path-output",
        str(OUT),
        "-W",
        "-n",
        "--keep-going",
        "-q",
    ]
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
