"""Can every asserted claim of the course fail? Run each notebook with each of its null twins.

    python scripts/falsify.py                          # every notebook -> docs/falsification.md
    python scripts/falsify.py notebooks/02_and_mask.ipynb --twins agreement-keeps-nothing
    python scripts/falsify.py --list                   # the registered twins, per notebook
    python scripts/falsify.py --shard 1/3 --json shard-1.json   # one machine's share of the runs
    python scripts/falsify.py --merge shard-*.json     # -> docs/falsification.md

``make falsify`` runs this. For every notebook, each null twin registered for it in
``scripts/twins/`` is swapped in right after the setup cell (``twins.apply``), and the notebook
runs top to bottom on base seed 0 and torch's default CPU kernels — the committed run, with
one function replaced. Every ``assert`` is recorded as it executes (the robustness harness's
recorder), and a failing assert does not stop its cell, so each run evaluates every assert.
Two kernels run at a time.

The report, ``docs/falsification.md``, gives for every assert the twins that broke it, and for
every twin the asserts it broke. The course's standard: every assert is broken by at least one
registered twin, unless its message starts with ``identity:`` or ``property:`` (a closed form,
an identity or a property check that no twin of a method applies to); and every twin breaks at
least one assert (a twin that breaks nothing tests nothing). The exit status is 1 when either
fails, or when a twin's run raised an error (a twin must run, not crash).

As with ``scripts/robustness.py``, ``--shard k/n`` runs the k-th of n parts of the twin runs (a
deterministic split balanced by the notebooks' measured times) and writes only its JSON, and
``--merge`` checks that the n parts hold every twin run once and writes the same report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
import robustness  # noqa: E402
import times  # noqa: E402
import twins  # noqa: E402

REPORT = ROOT / "docs" / "falsification.md"
EXEMPT = re.compile(r"^\s*(identity|property)\b", re.IGNORECASE)


def exempt(message: str) -> bool:
    """An assert no twin of a method applies to says so: its message starts with
    ``identity:`` or ``property:``."""
    return bool(EXEMPT.match(message))


def patch_source(name: str) -> str:
    """The cell run right after the setup cell: swap twin ``name`` in."""
    return (
        "import sys as _hv_sys\n"
        f"_hv_sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "import twins as _hv_twins\n"
        f"_hv_twins.apply({name!r}, get_ipython().user_ns)\n"
    )


def run_twin(path: Path, twin_name: str, timeout: int) -> dict:
    """One run of ``path`` with ``twin_name`` swapped in (in this process's kernel)."""
    twin = twins.by_name(twin_name)
    stop = (twin.stop_after or {}).get(path.stem)
    result = robustness.run_one(
        path,
        0,
        "default",
        timeout,
        after_setup=patch_source(twin_name),
        stop_after=stop,
        keep_going=True,
    )
    result["twin"] = twin_name
    return result


def _run_in_subprocess(path: Path, twin_name: str, timeout: int) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as out:
        out_path = out.name
    cmd = [sys.executable, __file__, "--worker", str(path), twin_name, out_path]
    cmd += ["--timeout", str(timeout)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{path.name} with twin {twin_name}:\n{done.stderr[-3000:]}")
    result = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    return result


def summarize(paths: list[Path], runs: list[dict]) -> dict:
    """Per notebook: each assert with the twins that broke it; each twin with what it broke."""
    out = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        mine = [r for r in runs if r["notebook"] == path.name]
        asserts = []
        for a in robustness.notebook_asserts(nb):
            broken_by, unreached = [], []
            for r in mine:
                records = [rec for rec in r["records"] if rec["key"] == a["key"]]
                if not records:
                    unreached.append(r["twin"])
                elif not all(rec["held"] for rec in records):
                    broken_by.append(r["twin"])
            asserts.append(
                a | {"broken_by": broken_by, "unreached": unreached, "exempt": exempt(a["message"])}
            )
        twin_rows = []
        for r in mine:
            twin = twins.by_name(r["twin"])
            broke = [a["message"] for a in asserts if r["twin"] in a["broken_by"]]
            twin_rows.append(
                {
                    "name": twin.name,
                    "target": twin.target,
                    "removes": twin.removes,
                    "broke": broke,
                    "seconds": r["seconds"],
                    "errors": r["errors"],
                }
            )
        out[path.name] = {"asserts": asserts, "twins": twin_rows}
    return out


def verdict(summary: dict) -> dict:
    """What the standard asks, notebook by notebook: the unbroken asserts, the idle twins, errors."""
    unbroken = {
        name: [a["message"] for a in nb["asserts"] if not a["exempt"] and not a["broken_by"]]
        for name, nb in summary.items()
    }
    idle = {
        name: [t["name"] for t in nb["twins"] if not t["broke"]] for name, nb in summary.items()
    }
    crashed = {
        name: [t["name"] for t in nb["twins"] if _crashes(t["errors"])]
        for name, nb in summary.items()
    }
    ok = not any(unbroken.values()) and not any(idle.values()) and not any(crashed.values())
    return {"ok": ok, "unbroken": unbroken, "idle": idle, "crashed": crashed}


def _crashes(errors: list[dict]) -> list[dict]:
    """Errors other than the asserts themselves (a failing assert is recorded, not raised)."""
    return [e for e in errors if not e["error"].startswith("AssertionError")]


def write_report(
    summary: dict,
    wall: float,
    target: Path,
    machine: str | None = None,
    shards: dict | None = None,
) -> bool:
    v = verdict(summary)
    n_twins = sum(len(nb["twins"]) for nb in summary.values())
    n_asserts = sum(len(nb["asserts"]) for nb in summary.values())
    lines = [
        "# Falsification: which null twin breaks which claim",
        "",
        "Written by `make falsify` (`scripts/falsify.py`); do not edit by hand.",
        "",
        f"- Date: {date.today().isoformat()}; machine: {machine or robustness._machine()}.",
        f"- {n_twins} twin runs over {len(summary)} notebooks ({n_asserts} asserts), base seed 0, "
        f"torch's default CPU kernels, two kernels at a time; {wall / 60:.1f} minutes in all.",
        *robustness.shards_lines(shards, wall),
        f"- **Every assert broken by a twin (or labelled identity/property), every twin breaking "
        f"an assert, no twin's run crashing: {'yes' if v['ok'] else 'NO'}.**",
        "",
        "A *null twin* is the method a claim credits with exactly that part removed (a mask that "
        "keeps nothing, a random mask of the same kept fraction, a penalty set to zero, "
        "annotations off the shortcut, an untrained network, shuffled labels), run on the same "
        "data, seeds and budget. Each twin is swapped in for one package function right after "
        "the notebook's setup cell (`scripts/twins/`), and the notebook runs top to bottom with "
        "every assert evaluated. An assert that no twin breaks would also pass for a broken "
        "method; a twin that breaks no assert tests nothing. Asserts whose message starts with "
        "*identity:* or *property:* check a closed form, an identity or a property that no twin "
        "of a method applies to.",
        "",
        "| notebook | asserts | broken by a twin | identity / property | unbroken | twins | twins "
        "that broke nothing |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, nb in summary.items():
        a = nb["asserts"]
        broken = sum(1 for x in a if x["broken_by"])
        ex = sum(1 for x in a if x["exempt"] and not x["broken_by"])
        lines.append(
            f"| `{name}` | {len(a)} | {broken} | {ex} | {len(v['unbroken'][name])} | "
            f"{len(nb['twins'])} | {len(v['idle'][name])} |"
        )
    for name, nb in summary.items():
        lines += [
            "",
            f"## `{name}`",
            "",
            "| twin | swaps | removes | asserts it broke | time (s) |",
            "|---|---|---|---:|---:|",
        ]
        for t in nb["twins"]:
            lines.append(
                f"| `{t['name']}` | `{t['target']}` | {robustness._cell(t['removes'])} | "
                f"{len(t['broke'])} | {t['seconds']:.0f} |"
            )
        lines += ["", "| cell | assert (its message) | broken by |", "|---:|---|---|"]
        for a in nb["asserts"]:
            if a["broken_by"]:
                who = ", ".join(f"`{t}`" for t in a["broken_by"])
            elif a["exempt"]:
                who = "— (identity / property)"
            else:
                who = "**none** ✗"
            lines.append(f"| {a['cell']} | {robustness._cell(a['message'])} | {who} |")
        for t in nb["twins"]:
            for e in _crashes(t["errors"]):
                lines.append(
                    f"\n- `{t['name']}` raised in cell {e['cell']}: "
                    f"`{robustness._cell(e['error'])[:300]}`"
                )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    return v["ok"]


def shard_jobs(jobs: list[tuple[Path, str]], k: int, n: int) -> list[tuple[Path, str]]:
    """The k-th of n parts of the ``(notebook, twin)`` runs, balanced by measured times."""
    seconds = times.median_seconds(sorted({path.stem for path, _ in jobs}))
    parts = times.split(jobs, lambda j: seconds[j[0].stem], n, key=lambda j: (j[0].name, j[1]))
    return parts[k - 1]


def merge(files: list[Path]) -> dict:
    """The stored runs of n shards as one run; ``SystemExit`` when they do not fit together."""
    parts = [json.loads(Path(f).read_text()) for f in files]
    if not parts:
        raise SystemExit("--merge needs the shards' JSON files")
    first = parts[0]
    for f, part in zip(files, parts, strict=True):
        if "shard" not in part:
            raise SystemExit(f"{f} is not a shard's JSON (no 'shard' entry)")
        if part["jobs"] != first["jobs"] or part["notebooks"] != first["notebooks"]:
            raise SystemExit(f"{f} was cut from another set of twin runs than {files[0]}")
    shards = [times.parse_shard(p["shard"]) for p in parts]
    n = shards[0][1]
    if sorted(shards) != [(k, n) for k in range(1, n + 1)]:
        got = ", ".join(p["shard"] for p in parts)
        raise SystemExit(f"--merge needs shards 1/{n} to {n}/{n} once each, got {got}")
    runs = [r for p in parts for r in p["runs"]]
    have = [[r["notebook"], r["twin"]] for r in runs]
    want = [[Path(nb).name, twin] for nb, twin in first["jobs"]]
    if sorted(have) != sorted(want):
        raise SystemExit("the shards do not hold every twin run exactly once")
    order = {(Path(nb).name, twin): i for i, (nb, twin) in enumerate(first["jobs"])}
    return {
        "notebooks": first["notebooks"],
        "wall": max(p["wall"] for p in parts),
        "machine_time": sum(p["wall"] for p in parts),
        "shards": n,
        "machines": sorted({p.get("machine", "unknown") for p in parts}),
        "runs": sorted(runs, key=lambda r: order[(r["notebook"], r["twin"])]),
    }


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _notebook_path(stored: str) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else ROOT / path


def _print_verdict(summary: dict) -> None:
    v = verdict(summary)
    for name in summary:
        for message in v["unbroken"][name]:
            print(f"unbroken: {name}: {message}")
        for twin_name in v["idle"][name]:
            print(f"breaks nothing: {name}: {twin_name}")
        for twin_name in v["crashed"][name]:
            print(f"raised an error: {name}: {twin_name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--twins", nargs="+", default=None, help="only these twins")
    parser.add_argument("--jobs", type=int, default=2, help="kernels at a time")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument(
        "--report", type=Path, default=None, help=f"default {REPORT.relative_to(ROOT)}"
    )
    parser.add_argument("--json", type=Path, default=None, help="default build/falsification.json")
    parser.add_argument(
        "--shard", metavar="K/N", default=None, help="run the k-th of n parts, write its --json"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="SHARD_JSON",
        default=None,
        help="merge the JSON files of the n shards into the report (runs nothing)",
    )
    parser.add_argument("--list", action="store_true", help="print the registry and exit")
    parser.add_argument("--worker", nargs=3, metavar=("NOTEBOOK", "TWIN", "OUT"))
    args = parser.parse_args(argv)
    if args.worker:
        notebook, twin_name, out = args.worker
        Path(out).write_text(json.dumps(run_twin(Path(notebook), twin_name, args.timeout)))
        return 0
    if args.shard and args.merge:
        parser.error("--shard and --merge do not combine")
    shard = times.parse_shard(args.shard) if args.shard else None
    report = args.report or (None if shard else REPORT)
    json_path = args.json or (
        ROOT / "build" / (f"falsification-shard-{shard[0]}.json" if shard else "falsification.json")
    )
    if args.merge:
        stored = merge(args.merge)
        summary = summarize([_notebook_path(nb) for nb in stored["notebooks"]], stored["runs"])
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(stored, indent=1))
        ok = write_report(
            summary,
            stored["wall"],
            report,
            machine=" / ".join(stored["machines"]),
            shards={"n": stored["shards"], "machine_time": stored["machine_time"]},
        )
        _print_verdict(summary)
        print(f"merged {stored['shards']} shards into {report}; the standard holds: {ok}")
        return 0 if ok else 1
    every_notebook = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    notebooks = [p.resolve() for p in args.notebooks] or every_notebook
    if args.list:
        for path in notebooks:
            print(path.stem)
            for t in twins.for_notebook(path.stem):
                print(f"  {t.name:36s} {t.target}  ({t.removes})")
        return 0
    jobs = [
        (path, t.name)
        for path in notebooks
        for t in twins.for_notebook(path.stem)
        if args.twins is None or t.name in args.twins
    ]
    seconds = times.median_seconds([p.stem for p in notebooks])
    jobs.sort(key=lambda j: (-seconds[j[0].stem], j[0].name))  # longest first: kernels end together
    all_jobs = [[_relative(path), name] for path, name in jobs]
    if shard:
        jobs = shard_jobs(jobs, *shard)
    print(
        f"{len(jobs)} twin runs over {len(notebooks)} notebooks"
        + (f", shard {args.shard}" if shard else ""),
        flush=True,
    )
    start = time.perf_counter()
    runs = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_run_in_subprocess, path, name, args.timeout) for path, name in jobs]
        for future in futures:
            r = future.result()
            bad = sum(1 for rec in r["records"] if not rec["held"])
            print(
                f"  {r['notebook']:34s} {r['twin']:36s} {r['seconds']:6.1f} s  "
                f"failed assert records: {bad}  errors: {len(_crashes(r['errors']))}",
                flush=True,
            )
            runs.append(r)
    wall = time.perf_counter() - start
    json_path.parent.mkdir(parents=True, exist_ok=True)
    if shard:
        stored = {
            "shard": args.shard,
            "notebooks": [_relative(p) for p in notebooks],
            "jobs": all_jobs,
            "machine": robustness._machine(),
            "wall": wall,
            "runs": runs,
        }
        json_path.write_text(json.dumps(stored, indent=1))
        crashed = [r for r in runs if _crashes(r["errors"])]
        print(f"wrote shard {args.shard} to {json_path} in {wall / 60:.1f} min")
        return 1 if crashed else 0  # the standard is judged on the merged runs
    summary = summarize(notebooks, runs)
    json_path.write_text(json.dumps({"wall": wall, "runs": runs}, indent=1))
    ok = write_report(summary, wall, report)
    _print_verdict(summary)
    print(f"wrote {report} in {wall / 60:.1f} min; the standard holds: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
