"""Execute notebooks top to bottom in the CI environment; optionally write the outputs back.

    python scripts/run_notebooks.py [--write] [notebooks/NN_*.ipynb ...]
    python scripts/run_notebooks.py --times hvnotes/times.json [--repeat 3] [notebooks/...]

Used by ``make execute`` (``--write``: refresh the committed outputs) and ``make bench`` (time
each notebook and record the times, ``--times``: the course's data file of measured times, see
``scripts/times.py``; the notebooks themselves are not written). Runs in this interpreter's
kernel with the same environment variables the tests use, so committed outputs and CI outputs
come from the same setting. Prints a table of wall times at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_start import start_with_retries  # noqa: E402  (scripts/kernel_start.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
    "MPLBACKEND": "Agg",
    "PYTHONHASHSEED": "0",
}


def run(path: Path, write: bool, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    start_with_retries(client.execute)()  # a kernel that dies before it answers ran nothing
    seconds = time.perf_counter() - start
    if write:
        for cell in nb.cells:  # keep the committed files free of run-specific metadata
            cell.metadata.pop("execution", None)
        nb.metadata.pop("widgets", None)  # widget state of a run (progress bars): never a result
        nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--write", action="store_true", help="write the outputs back")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument(
        "--times",
        type=Path,
        default=None,
        help="record each notebook's wall times in this data file (make bench: hvnotes/times.json)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each notebook")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    os.environ.update(KERNEL_ENV)
    if args.write:  # committed outputs: base seed 0 on this CPU's default kernels, always
        for key in ("HVNOTES_SEED", "ATEN_CPU_CAPABILITY", "HVNOTES_FAST"):
            os.environ.pop(key, None)
        os.environ["HVNOTES_DEVICE"] = "cpu"
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    runs = {path: [] for path in paths}
    for _ in range(args.repeat):
        for path in paths:
            print(f"running {path.name} ...", flush=True)
            runs[path].append(run(path, args.write, args.timeout))
            print(f"  {runs[path][-1]:6.1f} s", flush=True)
    print("\n| notebook | wall time (s) |\n|---|---:|")
    for path, seconds in runs.items():
        print(f"| {path.name} | {statistics.median(seconds):.1f} |")
    print(f"| **total** | {sum(statistics.median(s) for s in runs.values()):.1f} |")
    if args.times is not None:
        import times  # scripts/times.py, beside this file

        source = (
            f"make bench (each notebook alone, {args.repeat} run{'s' if args.repeat > 1 else ''}"
            " each, one kernel at a time)"
        )
        times.record(runs, source, path=args.times)
        print(f"recorded in {args.times}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
