"""Committed notebook outputs hold results only: no frozen progress widgets, no progress-bar text.

A run with tqdm's notebook bars leaves widget state in the notebook's metadata and a widget view
per bar in the outputs; a run with plain bars leaves their text in a stream. Scripted runs switch
tqdm off (``TQDM_DISABLE=1``) and ``scripts/run_notebooks.py`` drops widget state, so none of it
may reach a committed notebook (nor, from there, the site).
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# tqdm's text: "epochs:  40%|####      | 4/10 [00:01<00:02,  3.10it/s]" (or s/it, or ?it/s)
TQDM_BAR = re.compile(r"\d+%\||(?:\d|\?)(?:it/s|s/it)\]")


def progress_residue(nb: nbformat.NotebookNode) -> list[str]:
    """Everything in ``nb`` a progress bar left behind, one readable line per finding."""
    found = ["notebook metadata holds widget state ('widgets')"] if "widgets" in nb.metadata else []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                found.append(f"cell {index}: a widget view ({data.get('text/plain', '')!r})")
            text = output.get("text", "") + str(data.get("text/plain", ""))
            bar = None if WIDGET_VIEW in data else TQDM_BAR.search(text)
            if bar:
                snippet = text[max(0, bar.start() - 20) : bar.end() + 40].strip()
                found.append(f"cell {index}: progress-bar text {snippet!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_have_no_progress_widgets_or_bars(path):
    found = progress_residue(nbformat.read(path, as_version=4))
    assert not found, (
        f"{path.name}: re-run it with `make execute` (TQDM_DISABLE=1):\n  " + "\n  ".join(found)
    )


def _run_with_progress_bars() -> nbformat.NotebookNode:
    """A small notebook as a run with tqdm's bars leaves it: widget state, views and bar text."""
    train = nbformat.v4.new_code_cell("train(model)")
    train.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                WIDGET_VIEW: {"model_id": "91627e0d", "version_major": 2, "version_minor": 0},
                "text/plain": "epochs:   0%|          | 0/10 [00:00<?, ?it/s]",
            },
        ),
        nbformat.v4.new_output(
            "stream", name="stderr", text="epochs:  40%|####      | 4/10 [00:01<00:02,  3.10it/s]"
        ),
        nbformat.v4.new_output("stream", name="stdout", text="test accuracy 0.912 (90% needed)\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Toy"), train])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_residue_is_found_and_a_cleaned_copy_passes(tmp_path):
    path = tmp_path / "toy.ipynb"
    nbformat.write(_run_with_progress_bars(), path)
    found = progress_residue(nbformat.read(path, as_version=4))
    assert len(found) == 3, found
    assert "widget state" in found[0] and "widget view" in found[1] and "40%|####" in found[2]

    nb = nbformat.read(path, as_version=4)  # clean by hand, as a re-run with TQDM_DISABLE=1 would
    del nb.metadata["widgets"]
    nb.cells[1].outputs = nb.cells[1].outputs[2:]
    nbformat.write(nb, path)
    assert progress_residue(nbformat.read(path, as_version=4)) == []  # a result's "90%" is fine
