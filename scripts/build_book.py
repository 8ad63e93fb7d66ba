"""Build the course's static site with Jupyter Book 1.x, offline, from the committed outputs.

    python scripts/build_book.py      # -> build/book/_build/html/index.html

Copies ``book/`` (config and table of contents), ``README.md`` as the intro page, the workshop guide
and the executed notebooks into ``build/book-src``, then runs ``jupyter-book build`` with warnings
as errors. Notebooks listed in the table of contents but not yet written are left out of it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "build" / "book-src"
OUT = ROOT / "build" / "book"


def main() -> int:
    shutil.rmtree(SRC, ignore_errors=True)
    shutil.rmtree(OUT, ignore_errors=True)
    SRC.mkdir(parents=True)
    shutil.copy(ROOT / "book" / "_config.yml", SRC)
    shutil.copy(ROOT / "README.md", SRC / "intro.md")
    shutil.copy(ROOT / "docs" / "instructors.md", SRC / "instructors.md")
    for notebook in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        shutil.copy(notebook, SRC)
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    present = {p.stem for p in SRC.iterdir()}
    toc["chapters"] = [c for c in toc["chapters"] if c["file"] in present]
    (SRC / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
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
