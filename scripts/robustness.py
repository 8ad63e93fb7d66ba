"""Does every asserted claim of the course hold on every seed and every float path?

    python scripts/robustness.py                      # the full matrix -> docs/robustness.md
    python scripts/robustness.py --seeds 0 1 --paths default notebooks/06_capstone.ipynb
    python scripts/robustness.py --update notebooks/02_and_mask.ipynb   # re-run one, keep the rest
    python scripts/robustness.py --shard 2/4 --json shard-2.json        # one machine's share
    python scripts/robustness.py --merge shard-*.json                   # -> docs/robustness.md

``make robustness`` runs this. Every notebook is executed top to bottom under each base seed
(``HVNOTES_SEED``, default 0-4) and each float path this machine offers:

* ``default``: torch's CPU kernels for this CPU (``HVNOTES_DEVICE=cpu``);
* ``avx2``: the same with ``ATEN_CPU_CAPABILITY=avx2``, the AVX2 kernels most laptops run
  (offered when this CPU's default is AVX-512);
* ``scalar``: ``ATEN_CPU_CAPABILITY=default``, torch's kernels without vector instructions,
  offered instead when this CPU's default already *is* AVX2 (then ``avx2`` would repeat
  ``default`` bit for bit, and the matrix would test one float path twice);
* ``cuda``: the GPU, when torch sees one.

Two kernels run at a time. In each run an IPython AST transformer records every ``assert``
statement of the notebook as it executes (held, or failed with its message), and each code
cell's outputs are compared with the committed ones under the tests' nbval sanitizer, exactly
as ``make nbtest`` compares them. The report, ``docs/robustness.md``, gives for each notebook
its wall time and, for each assert (named by its message), in how many runs it held; then
every cell whose sanitized output differed from the committed one. A claim that does not hold
in every run is not a claim the course may assert.

The matrix can be split over machines (CI runners): ``--shard k/n`` runs the k-th of n parts
(a deterministic split that balances the notebooks' measured times in ``hvnotes/times.json``)
and writes only its JSON; ``--merge`` reads the n JSON files, checks that together they hold
every run of the matrix exactly once, and writes the same report a single run writes. With
``--times FILE`` (``make robustness``) the runs on torch's default CPU kernels are recorded as
each notebook's measured times (see ``scripts/times.py``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import times  # noqa: E402  (scripts/times.py: the measured times, shards)
from kernel_start import start_with_retries  # noqa: E402
from run_notebooks import KERNEL_ENV  # noqa: E402

SANITIZER = ROOT / "tests" / "nbval_sanitize.cfg"
REPORT = ROOT / "docs" / "robustness.md"
PATH_ENV = {
    "default": {"HVNOTES_DEVICE": "cpu"},
    "avx2": {"HVNOTES_DEVICE": "cpu", "ATEN_CPU_CAPABILITY": "avx2"},
    "scalar": {"HVNOTES_DEVICE": "cpu", "ATEN_CPU_CAPABILITY": "default"},
    "cuda": {"HVNOTES_DEVICE": "cuda"},
}
# nbval's default keys that are never compared, plus those conftest.py adds
SKIP_COMPARE = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
    "stderr",
    "text/html",
    "image/svg+xml",
    "application/pdf",
    "application/javascript",
}

# Runs first in every kernel (never written anywhere): rewrites each `assert test, msg` of the
# notebook's cells into a call that records the outcome, then raises exactly as before.
RECORDER = r"""
import ast as _ast, json as _json, math as _math, os as _os

_HV_LOG = _os.environ["HVNOTES_ASSERT_LOG"]
_HV_KEEP_GOING = _os.environ.get("HVNOTES_ASSERT_KEEP_GOING") == "1"  # make falsify: record, go on
_HV_NODES = (_ast.Name, _ast.Attribute, _ast.Subscript, _ast.Constant, _ast.BinOp, _ast.UnaryOp,
             _ast.Tuple, _ast.Slice, _ast.Load, _ast.operator, _ast.unaryop, _ast.Call)
_HV_CALLS = {"abs", "max", "min", "mean", "median", "item", "sum", "float", "int", "len", "round"}


def _hv_scalar(value):
    try:
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if isinstance(value, bool):
            return None
        value = float(value)
        return value if _math.isfinite(value) else None
    except (TypeError, ValueError, RuntimeError):
        return None


def _hv_assert(key, value, message_fn, probes):
    measured = {}
    for label, probe in probes:  # the operands of the comparisons, to show their spread
        try:
            v = _hv_scalar(probe())
        except Exception:
            v = None
        if v is not None:
            measured[label] = v
    message = None if value else message_fn()
    record = {"key": key, "held": bool(value), "measured": measured,
              "message": None if message is None else str(message)}
    with open(_HV_LOG, "a") as f:
        f.write(_json.dumps(record) + "\n")
    if not value and not _HV_KEEP_GOING:
        raise AssertionError(message) if message is not None else AssertionError()


def _hv_cheap(node):
    # re-evaluating an operand must be cheap and free of side effects: names, lookups, arithmetic
    for sub in _ast.walk(node):
        if not isinstance(sub, _HV_NODES):
            return False
        if isinstance(sub, _ast.Call):
            f = sub.func
            name = f.attr if isinstance(f, _ast.Attribute) else getattr(f, "id", "")
            if name not in _HV_CALLS:
                return False
    return True


def _hv_lambda(body):
    return _ast.Lambda(_ast.arguments([], [], None, [], [], None, []), body)


class _HvAsserts(_ast.NodeTransformer):
    def visit_Assert(self, node):
        key = _ast.unparse(node.test) + " || " + ("" if node.msg is None else _ast.unparse(node.msg))
        message = node.msg if node.msg is not None else _ast.Constant(None)
        operands = [o for c in _ast.walk(node.test) if isinstance(c, _ast.Compare)
                    for o in [c.left, *c.comparators]
                    if not isinstance(o, _ast.Constant) and _hv_cheap(o)]
        probes = _ast.List(
            [_ast.Tuple([_ast.Constant(_ast.unparse(o)), _hv_lambda(o)], _ast.Load())
             for o in operands], _ast.Load())
        call = _ast.Call(_ast.Name("_hv_assert", _ast.Load()),
                         [_ast.Constant(key), node.test, _hv_lambda(message), probes], [])
        return _ast.fix_missing_locations(_ast.copy_location(_ast.Expr(call), node))


get_ipython().ast_transformers.append(_HvAsserts())
"""


# ----------------------------------------------------------------------------- the asserts


def _message_text(node: ast.expr | None, test: ast.expr) -> str:
    """An assert's message as a reader sees it: f-string fields shown as ``{…}``."""
    if node is None:
        return f"assert {ast.unparse(test)}"
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    return ast.unparse(node)


def notebook_asserts(nb) -> list[dict]:
    """Every ``assert`` statement of a notebook's code cells, in order: key, cell, message."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                key = (
                    ast.unparse(node.test)
                    + " || "
                    + ("" if node.msg is None else ast.unparse(node.msg))
                )
                found.append(
                    {"key": key, "cell": index, "message": _message_text(node.msg, node.test)}
                )
    return found


# ----------------------------------------------------------------------------- outputs


def sanitize_patterns() -> list[tuple[str, str]]:
    from nbval.plugin import get_sanitize_patterns

    return get_sanitize_patterns(SANITIZER.read_text())


def comparable(outputs, patterns) -> dict[str, list]:
    """The outputs of one cell as nbval compares them: MIME key -> sanitized values."""
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    outputs = transform_streams_for_comparison(
        coalesce_streams([nbformat.from_dict(o) for o in outputs])
    )
    flat = defaultdict(list)
    for output in outputs:
        for key, value in output.items():
            if key in SKIP_COMPARE:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for sub, v in items:
                if sub in SKIP_COMPARE:
                    continue
                if isinstance(v, str):
                    for regex, replace in patterns:
                        v = re.sub(regex, replace, v)
                flat[sub].append(v)
    return dict(flat)


def _ignored(cell) -> bool:
    """nbval's own rule: a cell tagged ``nbval-ignore-output`` (or with the comment) is run but
    never compared."""
    tags = cell.get("metadata", {}).get("tags", [])
    lines = [line.strip() for line in cell.source.splitlines()]
    return "nbval-ignore-output" in tags or "# NBVAL_IGNORE_OUTPUT" in lines


# ----------------------------------------------------------------------------- one run


def setup_cell_index(nb) -> int:
    """The index of the notebook's setup cell: the first code cell that calls ``hvnotes.setup``."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "hvnotes.setup(" in cell.source:
            return index
    raise ValueError("the notebook has no setup cell (a code cell calling hvnotes.setup)")


def run_one(
    path: Path,
    seed: int,
    float_path: str,
    timeout: int,
    after_setup: str | None = None,
    stop_after: str | None = None,
    keep_going: bool = False,
) -> dict:
    """Execute one notebook once (in this process's kernel) and return what happened.

    ``after_setup``: source of a cell run right after the setup cell (``make falsify`` swaps a
    null twin in there). ``stop_after``: source text of the last cell to run. ``keep_going``:
    a failing assert is recorded and the cell goes on, so every assert of the run is evaluated.
    """
    nb = nbformat.read(path, as_version=4)
    if stop_after is not None:
        last = [i for i, c in enumerate(nb.cells) if stop_after in c.source]
        if not last:
            raise ValueError(f"{path.name}: no cell contains {stop_after!r}")
        nb.cells = nb.cells[: last[0] + 1]
    committed = [c.get("outputs", []) if c.cell_type == "code" else None for c in nb.cells]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as log:
        log_path = log.name
    os.environ.update(KERNEL_ENV)
    os.environ.update(PATH_ENV[float_path])
    os.environ["HVNOTES_SEED"] = str(seed)
    os.environ["HVNOTES_ASSERT_LOG"] = log_path
    os.environ["HVNOTES_ASSERT_KEEP_GOING"] = "1" if keep_going else "0"
    inserted = [0]
    if after_setup is not None:
        position = setup_cell_index(nb) + 1
        nb.cells.insert(position, nbformat.v4.new_code_cell(after_setup))
        committed.insert(position, [])
        inserted.append(position + 1)  # its index once the recorder is in front
    nb.cells.insert(0, nbformat.v4.new_code_cell(RECORDER))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    start_with_retries(client.execute)()  # a kernel that dies before it answers ran nothing
    seconds = time.perf_counter() - start
    for index in reversed(inserted):  # the recorder, and the cell run after setup
        cell = nb.cells.pop(index)
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            raise RuntimeError(f"a cell the harness inserted failed in the kernel: {cell.outputs}")
    if after_setup is not None:
        committed.pop(inserted[1] - 1)
    records = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line]
    os.unlink(log_path)
    patterns = sanitize_patterns()
    errors, differs = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append({"cell": index, "error": f"{output['ename']}: {output['evalue']}"})
        if _ignored(cell):
            continue  # nbval does not compare this cell's outputs either
        if comparable(cell.get("outputs", []), patterns) != comparable(committed[index], patterns):
            differs.append(index)
    return {
        "notebook": path.name,
        "seed": seed,
        "path": float_path,
        "seconds": seconds,
        "records": records,
        "errors": errors,
        "differs": differs,
    }


# ----------------------------------------------------------------------------- the matrix


def second_cpu_path() -> str | None:
    """The CPU float path paired with ``default``; None when this CPU offers no other."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return "avx2"
    if capability == "AVX2":  # avx2 is the default here: take the non-vector kernels instead
        return "scalar"
    return None


def available_paths() -> list[str]:
    import torch

    second = second_cpu_path()
    paths = ["default"] + ([second] if second else [])
    if torch.cuda.is_available():
        paths.append("cuda")
    return paths


def _run_in_subprocess(path: Path, seed: int, float_path: str, timeout: int) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as out:
        out_path = out.name
    cmd = [sys.executable, __file__, "--worker", str(path), str(seed), float_path, out_path]
    cmd += ["--timeout", str(timeout)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{path.name} seed {seed} {float_path}:\n{done.stderr[-3000:]}")
    result = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    return result


def summarize(paths: list[Path], runs: list[dict]) -> dict:
    """Per notebook: times, and for each assert how many runs it held in (and failed in)."""
    out = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        mine = [r for r in runs if r["notebook"] == path.name]
        asserts, run_ok = [], [True] * len(mine)
        for a in notebook_asserts(nb):
            held, failures, unreached, measured = 0, [], [], defaultdict(list)
            for i, r in enumerate(mine):
                records = [rec for rec in r["records"] if rec["key"] == a["key"]]
                for rec in records:
                    for label, value in rec.get("measured", {}).items():
                        measured[label].append(value)
                if records and all(rec["held"] for rec in records):
                    held += 1  # evaluated, and held every time it ran
                    continue
                run_ok[i] = False
                (failures if records else unreached).append(f"seed {r['seed']} {r['path']}")
            spread = {label: (min(v), max(v)) for label, v in measured.items()}
            asserts.append(
                a
                | {
                    "held": held,
                    "of": len(mine),
                    "failures": failures,
                    "unreached": unreached,
                    "measured": spread,
                }
            )
        out[path.name] = {
            "asserts": asserts,
            "runs_all_held": sum(run_ok),
            "seconds": [r["seconds"] for r in mine],
            "errors": [
                e | {"run": f"seed {r['seed']} {r['path']}"} for r in mine for e in r["errors"]
            ],
            "differs": {
                f"seed {r['seed']} {r['path']}": r["differs"] for r in mine if r["differs"]
            },
            "runs": len(mine),
        }
    return out


def _machine() -> str:
    return times.machine()


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(
    summary: dict,
    seeds,
    paths,
    wall: float,
    target: Path,
    updated: dict | None = None,
    machine: str | None = None,
    shards: dict | None = None,
) -> bool:
    """Write the report; ``machine``: where the runs ran (this machine by default); ``shards``:
    ``{"n", "machine_time"}`` when the runs come from ``--merge`` (then ``wall`` is the longest
    shard's)."""
    all_held = all(
        nb["runs_all_held"] == nb["runs"] and not nb["errors"] for nb in summary.values()
    )
    n_runs = len(seeds) * len(paths)
    lines = [
        "# Robustness of the course's claims",
        "",
        "Written by `make robustness` (`scripts/robustness.py`); do not edit by hand.",
        "",
        f"- Date: {date.today().isoformat()}; machine: {machine or _machine()}.",
        f"- Matrix: base seeds {', '.join(map(str, seeds))} (`HVNOTES_SEED`) × float paths "
        f"{', '.join(f'`{p}`' for p in paths)} = {n_runs} runs of every notebook; two kernels at a "
        f"time; {wall / 60:.1f} minutes in all.",
        *shards_lines(shards, wall),
        *(
            [
                f"- Updated {updated['date']}: {', '.join(f'`{n}`' for n in updated['notebooks'])}"
                f" re-run over the same matrix ({updated['wall'] / 60:.1f} minutes, included above);"
                " the other notebooks' runs are those of the full matrix."
            ]
            if updated
            else []
        ),
        "- Float paths: `default` = torch's CPU kernels for this CPU, `avx2` = "
        "`ATEN_CPU_CAPABILITY=avx2` (where the default is AVX-512), `scalar` = "
        "`ATEN_CPU_CAPABILITY=default`, kernels without vector instructions (where the default "
        "is AVX2, so that the matrix has two different float paths), `cuda` = the GPU.",
        f"- **Every assert held in every run: {'yes' if all_held else 'NO'}.**",
        "",
        "What is guaranteed: the same seed on the same machine gives the same numbers; any seed "
        "or machine gives the same claims — each assert below held in the runs counted, and the "
        "numbers vary within the spread each notebook prints. nbval compares the committed "
        "outputs with numbers masked (`tests/nbval_sanitize.cfg`), so the words, labels and "
        "assert lines must match on every run too; the last column counts the runs whose "
        "sanitized outputs matched the committed ones in every cell.",
        "",
        "| notebook | asserts | runs where all held | outputs matched | wall time (s), median [min–max] |",
        "|---|---:|---:|---:|---|",
    ]
    for name, nb in summary.items():
        matched = nb["runs"] - len(nb["differs"])
        s = nb["seconds"]
        lines.append(
            f"| `{name}` | {len(nb['asserts'])} | {nb['runs_all_held']}/{nb['runs']} | "
            f"{matched}/{nb['runs']} | {statistics.median(s):.0f} [{min(s):.0f}–{max(s):.0f}] |"
        )
    for name, nb in summary.items():
        lines += [
            "",
            f"## `{name}`",
            "",
            "| cell | assert (its message) | held | its operands across the runs, min–max |",
            "|---:|---|---:|---|",
        ]
        for a in nb["asserts"]:
            mark = "" if a["held"] == a["of"] else " ✗"
            spread = "; ".join(
                f"`{_cell(label)}` {_num(lo)}–{_num(hi)}"
                for label, (lo, hi) in a["measured"].items()
            )
            lines.append(
                f"| {a['cell']} | {_cell(a['message'])} | {a['held']}/{a['of']}{mark} | {spread} |"
            )
        for a in nb["asserts"]:
            if a["failures"]:
                lines.append(f"\n- failed in: {', '.join(a['failures'])} — {_cell(a['message'])}")
            if a["unreached"]:
                lines.append(
                    f"\n- not reached (an earlier error) in: {', '.join(a['unreached'])} — "
                    f"{_cell(a['message'])}"
                )
        if nb["errors"]:
            lines.append("\nErrors:\n")
            lines += [
                f"- {e['run']}, cell {e['cell']}: `{_cell(e['error'])[:300]}`" for e in nb["errors"]
            ]
        if nb["differs"]:
            lines.append("\nCells whose sanitized outputs differ from the committed ones:\n")
            lines += [f"- {run}: cells {cells}" for run, cells in nb["differs"].items()]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    return all_held


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _notebook_path(stored: str) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else ROOT / path


def canonical(runs: list[dict], paths: list[str]) -> list[dict]:
    """Runs in one fixed order (notebook, float path as listed, seed), whichever machine or
    shard ran them when: the report lists failures in this order."""
    order = {p: i for i, p in enumerate(paths)}
    return sorted(runs, key=lambda r: (r["notebook"], order.get(r["path"], len(order)), r["seed"]))


def job_seconds(notebooks: list[Path]) -> dict[str, float]:
    """Each notebook's expected run time, from the measured times (the shards' balance)."""
    return times.median_seconds([p.stem for p in notebooks])


def shard_jobs(jobs: list[tuple], k: int, n: int) -> list[tuple]:
    """The k-th of n parts of the matrix's ``(notebook, seed, path)`` jobs: the same split on
    every machine (it depends only on the jobs and the committed times)."""
    seconds = job_seconds(sorted({j[0] for j in jobs}))
    parts = times.split(
        jobs, lambda j: seconds[j[0].stem], n, key=lambda j: (j[0].name, j[1], j[2])
    )
    return parts[k - 1]


def shards_lines(shards: dict | None, wall: float) -> list[str]:
    """The report's line on a run merged from shards (none for a single run); falsify's too."""
    if not shards:
        return []
    return [
        f"- Split into {shards['n']} shards (`--shard k/n`, on separate machines or one after "
        f"another) and merged (`--merge`): the longest shard took {wall / 60:.1f} minutes, "
        f"{shards['machine_time'] / 60:.1f} minutes of machine time in all."
    ]


def merge(files: list[Path]) -> dict:
    """The stored runs of n shards as one run of the whole matrix; raises ``SystemExit`` when
    the shards do not fit together (other seeds, paths or notebooks, a shard missing or twice,
    a run missing or twice)."""
    parts = [json.loads(Path(f).read_text()) for f in files]
    if not parts:
        raise SystemExit("--merge needs the shards' JSON files")
    first = parts[0]
    for f, part in zip(files, parts, strict=True):
        if "shard" not in part:
            raise SystemExit(f"{f} is not a shard's JSON (no 'shard' entry)")
        for key in ("seeds", "paths", "notebooks"):
            if part[key] != first[key]:
                raise SystemExit(f"{f}: {key} {part[key]} differ from {files[0]}'s {first[key]}")
    shards = [times.parse_shard(p["shard"]) for p in parts]
    n = shards[0][1]
    if sorted(shards) != [(k, n) for k in range(1, n + 1)]:
        got = ", ".join(p["shard"] for p in parts)
        raise SystemExit(f"--merge needs shards 1/{n} to {n}/{n} once each, got {got}")
    runs = [r for p in parts for r in p["runs"]]
    names = [Path(nb).name for nb in first["notebooks"]]
    want = {(nb, seed, path) for nb in names for seed in first["seeds"] for path in first["paths"]}
    have = [(r["notebook"], r["seed"], r["path"]) for r in runs]
    if len(have) != len(set(have)) or set(have) != want:
        missing = sorted(want - set(have))
        twice = sorted({h for h in have if have.count(h) > 1})
        raise SystemExit(
            f"the shards do not hold the matrix once: missing {missing}, twice {twice}"
        )
    machines = sorted({p.get("machine", "unknown") for p in parts})
    return {
        "seeds": first["seeds"],
        "paths": first["paths"],
        "notebooks": first["notebooks"],
        "wall": max(p["wall"] for p in parts),
        "machine_time": sum(p["wall"] for p in parts),
        "shards": n,
        "machines": machines,
        "runs": runs,
    }


def record_times(runs: list[dict], notebooks: list[Path], target: Path, jobs: int) -> None:
    """Each notebook's wall times on torch's default CPU kernels (what a learner runs), into the
    course's data file of measured times."""
    seconds = {}
    for path in notebooks:
        mine = [r for r in runs if r["notebook"] == path.name]
        default = [r["seconds"] for r in mine if r["path"] == "default"]
        seconds[path] = default or [r["seconds"] for r in mine]
    seeds = sorted({r["seed"] for r in runs})
    source = (
        f"make robustness (its runs on torch's default CPU kernels, base seeds "
        f"{seeds[0]}-{seeds[-1]}, {jobs} kernel{'s' if jobs > 1 else ''} at a time)"
    )
    times.record(seconds, source, path=target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--paths", nargs="+", choices=sorted(PATH_ENV), default=None)
    parser.add_argument("--jobs", type=int, default=2, help="kernels at a time")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument(
        "--report", type=Path, default=None, help=f"default {REPORT.relative_to(ROOT)}"
    )
    parser.add_argument("--json", type=Path, default=None, help="default build/robustness.json")
    parser.add_argument(
        "--update",
        action="store_true",
        help="re-run only the notebooks given and keep the other notebooks' runs from --json "
        "(same seeds and paths); the report then covers every notebook",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        default=None,
        help="run only the k-th of n parts of the matrix and write its --json (no report)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="SHARD_JSON",
        default=None,
        help="merge the JSON files of the n shards into the report (runs nothing)",
    )
    parser.add_argument(
        "--times",
        type=Path,
        default=None,
        help="record the measured times in this data file (make robustness: hvnotes/times.json)",
    )
    parser.add_argument(
        "--second-cpu-capability",
        action="store_true",
        help="print the ATEN_CPU_CAPABILITY of the second CPU path and exit (make nbtest-other)",
    )
    parser.add_argument("--worker", nargs=4, metavar=("NOTEBOOK", "SEED", "PATH", "OUT"))
    args = parser.parse_args(argv)
    if args.second_cpu_capability:
        second = second_cpu_path()  # without one, torch's default kernels are the only ones
        print(PATH_ENV[second]["ATEN_CPU_CAPABILITY"] if second else "default")
        return 0
    if args.worker:
        notebook, seed, float_path, out = args.worker
        result = run_one(Path(notebook), int(seed), float_path, args.timeout)
        Path(out).write_text(json.dumps(result))
        return 0
    if sum(map(bool, (args.shard, args.merge, args.update))) > 1:
        parser.error("--shard, --merge and --update do not combine")
    shard = times.parse_shard(args.shard) if args.shard else None
    report = args.report or (None if shard else REPORT)
    json_path = args.json or (
        ROOT / "build" / (f"robustness-shard-{shard[0]}.json" if shard else "robustness.json")
    )
    if args.merge:
        stored = merge(args.merge)
        notebooks = [_notebook_path(nb) for nb in stored["notebooks"]]
        stored["runs"] = canonical(stored["runs"], stored["paths"])
        summary = summarize(notebooks, stored["runs"])
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(stored, indent=1))
        all_held = write_report(
            summary,
            stored["seeds"],
            stored["paths"],
            stored["wall"],
            report,
            machine=" / ".join(stored["machines"]),
            shards={"n": stored["shards"], "machine_time": stored["machine_time"]},
        )
        if args.times:
            record_times(stored["runs"], notebooks, args.times, args.jobs)
        print(f"merged {stored['shards']} shards into {report}; every assert held: {all_held}")
        return 0 if all_held else 1
    paths = args.paths or available_paths()
    every_notebook = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    notebooks = [p.resolve() for p in args.notebooks] or every_notebook
    kept, earlier_wall = [], 0.0
    if args.update:
        if not args.notebooks:
            raise SystemExit("--update needs the notebooks to re-run")
        stored = json.loads(json_path.read_text())
        if stored["seeds"] != args.seeds or stored["paths"] != paths:
            raise SystemExit(
                f"--update: {json_path} holds seeds {stored['seeds']} x paths {stored['paths']}, "
                f"not {args.seeds} x {paths}"
            )
        names = {p.name for p in notebooks}
        kept = [r for r in stored["runs"] if r["notebook"] not in names]
        # earlier reports did not store their wall time: two kernels at a time, about half the sum
        earlier_wall = stored.get("wall", sum(r["seconds"] for r in stored["runs"]) / args.jobs)
    jobs = [(nb, seed, p) for p in paths for seed in args.seeds for nb in notebooks]
    # longest notebooks first (by their measured times), so the kernels finish together
    seconds = job_seconds(notebooks)
    jobs.sort(key=lambda j: (-seconds[j[0].stem], j[0].name))
    if shard:
        jobs = shard_jobs(jobs, *shard)
    print(
        f"{len(jobs)} runs: {len(notebooks)} notebooks x seeds {args.seeds} x paths {paths}"
        + (f", shard {args.shard}" if shard else "")
    )
    start = time.perf_counter()
    runs = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_run_in_subprocess, *job, args.timeout) for job in jobs]
        for future in futures:
            r = future.result()
            bad = [rec for rec in r["records"] if not rec["held"]]
            print(
                f"  {r['notebook']:34s} seed {r['seed']} {r['path']:8s} {r['seconds']:6.1f} s  "
                f"asserts failed: {len(bad)}  errors: {len(r['errors'])}  "
                f"cells differing: {len(r['differs'])}",
                flush=True,
            )
            runs.append(r)
    wall = time.perf_counter() - start
    if shard:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        stored = {
            "shard": args.shard,
            "seeds": args.seeds,
            "paths": paths,
            "notebooks": [_relative(p) for p in notebooks],
            "machine": _machine(),
            "wall": wall,
            "runs": runs,
        }
        json_path.write_text(json.dumps(stored, indent=1))
        ok = all(rec["held"] for r in runs for rec in r["records"]) and not any(
            r["errors"] for r in runs
        )
        if report:  # a shard's own report, if asked for (covers only its runs)
            write_report(summarize(notebooks, runs), args.seeds, paths, wall, report)
        print(f"wrote shard {args.shard} to {json_path} in {wall / 60:.1f} min; all held: {ok}")
        return 0 if ok else 1
    updated = None
    ran = list(notebooks)
    if args.update:
        updated = {
            "date": date.today().isoformat(),
            "notebooks": [p.name for p in notebooks],
            "wall": wall,
        }
        runs, notebooks, wall = kept + runs, every_notebook, earlier_wall + wall
    runs = canonical(runs, paths)
    summary = summarize(notebooks, runs)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    stored = {"seeds": args.seeds, "paths": paths, "wall": wall, "runs": runs}
    json_path.write_text(json.dumps(stored, indent=1))
    all_held = write_report(summary, args.seeds, paths, wall, report, updated)
    if args.times:
        record_times(
            [r for r in runs if r["notebook"] in {p.name for p in ran}], ran, args.times, args.jobs
        )
    print(
        f"wrote {report.relative_to(ROOT) if report.is_relative_to(ROOT) else report}"
        f" in {wall / 60:.1f} min; every assert held in every run: {all_held}"
    )
    return 0 if all_held else 1


if __name__ == "__main__":
    sys.exit(main())
