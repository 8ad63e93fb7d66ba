"""The robustness harness records every assert of a notebook, held or failed, per seed."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("robustness", ROOT / "scripts" / "robustness.py")
robustness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(robustness)

CELLS = [
    "import hvnotes\ndevice = hvnotes.setup(0)",
    'assert True, "always"\nprint(f"base seed {hvnotes.base_seed()}")',
    'def check(x):\n    assert x < 1, f"x = {x} should be small"\n\ncheck(0)',
    'base = hvnotes.base_seed()\nassert base == 0, "only the first seed"\nprint("after")',
    'for k in range(3):\n    assert k < 2 or hvnotes.base_seed() == 0, "a loop"',
    "# NBVAL_IGNORE_OUTPUT\nprint(hvnotes.base_seed() == 0)",
]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "toy.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="base seed 7\n")]
    nbformat.write(nb, path)
    return path


def test_asserts_are_found_with_their_messages(notebook):
    found = robustness.notebook_asserts(nbformat.read(notebook, as_version=4))
    assert [a["message"] for a in found] == [
        "always",
        "x = {…} should be small",
        "only the first seed",
        "a loop",
    ]


def test_each_run_records_held_and_failed_asserts(notebook):
    runs = [robustness.run_one(notebook, seed, "default", timeout=60) for seed in (0, 1)]
    summary = robustness.summarize([notebook], runs)["toy.ipynb"]
    held = {a["message"]: a["held"] for a in summary["asserts"]}
    assert held == {
        "always": 2,
        "x = {…} should be small": 2,
        "only the first seed": 1,
        "a loop": 1,
    }
    assert summary["runs_all_held"] == 1
    spread = {a["message"]: a["measured"] for a in summary["asserts"]}
    assert spread["x = {…} should be small"] == {"x": (0.0, 0.0)}  # the operand's value, per run
    assert spread["only the first seed"] == {"base": (0.0, 1.0)}
    assert spread["a loop"] == {"k": (0.0, 2.0)}  # a call (base_seed()) is not re-evaluated
    # the failing assert raised as before: an error in that cell, the rest of the notebook ran
    assert [e["cell"] for e in runs[1]["errors"]] == [3, 4]
    assert "AssertionError: only the first seed" in runs[1]["errors"][0]["error"]
    # outputs are compared with the committed ones with numbers masked: 'base seed 7' matches;
    # cell 3 prints 'after' (not committed), and in the second run cells 3 and 4 raise instead
    assert runs[0]["differs"] == [3] and runs[1]["differs"] == [3, 4]


def test_the_cpu_float_paths_run_different_kernels():
    # On a CPU whose default is AVX2, "avx2" would repeat "default" bit for bit: one float path
    # tested twice. Each offered CPU path must select its own kernels.
    cpu_paths = [p for p in robustness.available_paths() if p != "cuda"]
    assert len(cpu_paths) == 2, cpu_paths
    capabilities = set()
    for path in cpu_paths:
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        env |= robustness.PATH_ENV[path]
        probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        )
        capabilities.add(out.stdout.strip())
    assert len(capabilities) == len(cpu_paths), (cpu_paths, capabilities)
