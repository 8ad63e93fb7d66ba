"""The robustness harness records every assert of a notebook, held or failed, per seed."""

import importlib.util
import json
import os
import re
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


# ----------------------------------------------------------------------------- shards

SHARD_NOTEBOOKS = {
    "01_first.ipynb": [
        "import os\nseed = int(os.environ['HVNOTES_SEED'])",
        'assert seed >= 0, "any seed"\nprint("ran")',
        'assert seed == 0, "only the first seed"',
    ],
    "02_second.ipynb": [
        "import os\nseed = int(os.environ['HVNOTES_SEED'])",
        'x = 3 * seed\nassert x < 10, f"x = {x} should be small"',
    ],
}


def _masked_report(path: Path) -> str:
    """A report with what differs between two runs of the same matrix masked: wall times (the
    table's last column, the minutes in all) and the line that says the runs were sharded."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("- Split into")]
    text = "\n".join(lines)
    text = re.sub(r"\| \d+ \[\d+–\d+\] \|$", "| T |", text, flags=re.MULTILINE)
    return re.sub(r"[\d.]+ minutes in all", "T minutes in all", text)


def test_two_shards_merged_equal_one_run(tmp_path):
    paths = []
    for name, cells in SHARD_NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nbformat.write(nb, tmp_path / name)
        paths.append(str(tmp_path / name))
    matrix = ["--seeds", "1", "--paths", "default", "--jobs", "1", *paths]  # 2 runs in all
    one = robustness.main(
        [*matrix, "--report", str(tmp_path / "one.md"), "--json", str(tmp_path / "one.json")]
    )
    shard_runs = []
    for k in (1, 2):
        out = tmp_path / f"shard-{k}.json"
        robustness.main([*matrix, "--shard", f"{k}/2", "--json", str(out)])
        shard_runs.append(json.loads(out.read_text())["runs"])
    assert [len(r) for r in shard_runs] == [1, 1]  # one notebook each
    merged = robustness.main(
        [
            "--merge",
            str(tmp_path / "shard-1.json"),
            str(tmp_path / "shard-2.json"),
            "--report",
            str(tmp_path / "merged.md"),
            "--json",
            str(tmp_path / "merged.json"),
        ]
    )
    assert one == merged == 1  # "only the first seed" failed on seed 1, in both
    assert _masked_report(tmp_path / "merged.md") == _masked_report(tmp_path / "one.md")
    assert "Split into 2 shards" in (tmp_path / "merged.md").read_text()

    def runs(path):  # every run's outcome, without its wall time
        return [
            {k: v for k, v in r.items() if k != "seconds"}
            for r in json.loads(path.read_text())["runs"]
        ]

    assert runs(tmp_path / "merged.json") == runs(tmp_path / "one.json")
    # a shard missing, or given twice, is refused
    for files in (["shard-1.json"], ["shard-1.json", "shard-1.json"]):
        with pytest.raises(SystemExit, match="shards 1/2 to 2/2"):
            robustness.main(["--merge", *(str(tmp_path / f) for f in files)])


def test_shards_split_the_matrix_by_measured_time():
    a, b = Path("notebooks/00_map.ipynb"), Path("notebooks/01_consistency_of_minima.ipynb")
    jobs = [(nb, seed, p) for p in ("default", "scalar") for seed in range(5) for nb in (a, b)]
    parts = [robustness.shard_jobs(jobs, k, 3) for k in (1, 2, 3)]
    assert sorted(j for part in parts for j in part) == sorted(jobs)
    assert parts == [robustness.shard_jobs(list(reversed(jobs)), k, 3) for k in (1, 2, 3)]
    seconds = robustness.job_seconds([a, b])
    loads = [sum(seconds[j[0].stem] for j in part) for part in parts]
    assert max(loads) - min(loads) <= max(seconds.values())
