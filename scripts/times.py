"""The course's notebook times: the one data file, and every table and line rendered from it.

    python scripts/times.py                         # print the README's table
    python scripts/times.py --guide                 # print the workshop guide's table
    python scripts/times.py --write README.md docs/instructors.md notebooks/0*.ipynb
    python scripts/times.py --check README.md docs/instructors.md notebooks/0*.ipynb
    python scripts/times.py --counts                # words and exercises from the notebooks now
    python scripts/times.py --longest-first notebooks/*.ipynb   # for make nbtest (no venv needed)

The data file is ``hvnotes/times.json`` (shipped in the package, so a notebook reads it with
``hvnotes.times.table()``). ``make bench`` (``scripts/run_notebooks.py --times``) and
``make robustness`` (``scripts/robustness.py --times``) write it; nothing else does, and nobody
edits it by hand. Each notebook's entry holds the wall times of its measured runs (median, min,
max, how many), the date, machine and command that took them, its kind (lesson or deep dive) and
its words of prose and exercises, from which the study time is estimated by the rule stored in
the file (``hvnotes.times.rule_text()``).

Documents quote times only inside marked blocks, which ``--write`` fills::

    <!-- times:start table -->   ... the README's table ...        <!-- times:end -->
    <!-- times:start guide -->   ... the workshop guide's table ... <!-- times:end -->
    <!-- times:start 02_and_mask --> ... one notebook's line ...    <!-- times:end -->

(in a notebook, inside a markdown cell). ``--check`` (and ``tests/test_times.py``) reads every
time quoted in a block — table cells under a header that says run time / study time, or the
clauses of a notebook's line — and checks it against the data file: a run time must lie within
its runs' [min, max] and a study time within the rule's estimate over that range, each give or
take the rounding of the quote.

Only the standard library is imported here (the Makefile calls ``--longest-first`` before the
virtual environment exists).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("_hvnotes_times", ROOT / "hvnotes" / "times.py")
hvtimes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hvtimes)  # the package's reader, without importing the package (torch)

DATA = hvtimes.DATA
BLOCK = re.compile(
    r"(<!-- times:start(?:[ \t]+(?P<arg>[\w-]+))?[ \t]*-->)(?P<body>.*?)(<!-- times:end -->)",
    re.DOTALL,
)
STEM = re.compile(r"\b(\d\d_[a-z0-9_]*[a-z0-9])\b")
NUMBER = r"\d+(?:\.\d+)?"


# ----------------------------------------------------------------------------- the data file


def notebook_stems(folder: Path = NOTEBOOKS) -> list[str]:
    return sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))


def counts(path: Path) -> tuple[int, int]:
    """``(words of prose, exercises)`` of one notebook: the words of its markdown cells (split on
    white space, as ``tests/test_lessons.py`` counts them) and its cells tagged ``exercise``."""
    nb = json.loads(Path(path).read_text())
    words = exercises = 0
    for cell in nb["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            words += len(source.split())
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            exercises += 1
    return words, exercises


def machine() -> str:
    """This machine in words: CPU model, cores, and torch's build and default CPU kernels."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        text += (
            f"; torch {torch.__version__} "
            f"(default CPU kernels: {torch.backends.cpu.get_cpu_capability()})"
        )
    except ImportError:
        pass
    return text


def write_data(data: dict, path: Path = DATA) -> None:
    data = {
        "about": "Measured wall times of the course's notebooks, written by make bench and make "
        "robustness (scripts/times.py); do not edit by hand. Study times follow the rule below.",
        "rule": data.get("rule", dict(hvtimes.RULE)),
        "rule_text": hvtimes.rule_text(data.get("rule")),
        "notebooks": {stem: data["notebooks"][stem] for stem in sorted(data["notebooks"])},
    }
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def record(
    seconds: dict[Path, Sequence[float]],
    source: str,
    path: Path = DATA,
    machine_text: str | None = None,
    today: str | None = None,
) -> dict:
    """Store the measured runs of some notebooks (the others' entries are kept) and drop the
    entries of notebooks that no longer exist beside them. Returns the data written."""
    data = hvtimes.load(path)
    machine_text = machine_text or machine()
    today = today or date.today().isoformat()
    folders = set()
    for notebook, runs in seconds.items():
        notebook = Path(notebook)
        runs = [float(s) for s in runs]
        if not runs:
            raise ValueError(f"{notebook.name}: no runs to record")
        words, exercises = counts(notebook)
        data["notebooks"][notebook.stem] = {
            "kind": hvtimes.kind(notebook.stem),
            "median": round(statistics.median(runs), 1),
            "min": round(min(runs), 1),
            "max": round(max(runs), 1),
            "runs": len(runs),
            "date": today,
            "machine": machine_text,
            "source": source,
            "words": words,
            "exercises": exercises,
        }
        folders.add(notebook.resolve().parent)
    existing = {p.stem for folder in folders for p in folder.glob("[0-9][0-9]_*.ipynb")}
    for stem in [s for s in data["notebooks"] if folders and s not in existing]:
        del data["notebooks"][stem]
    write_data(data, path)
    return data


def refresh_counts(path: Path = DATA, folder: Path = NOTEBOOKS) -> list[str]:
    """Re-count words and exercises of every notebook in the data file and drop the entries of
    notebooks that are gone. Returns what changed."""
    data = hvtimes.load(path)
    changed = []
    for stem in list(data["notebooks"]):
        notebook = folder / f"{stem}.ipynb"
        if not notebook.exists():
            del data["notebooks"][stem]
            changed.append(f"{stem}: removed (no such notebook)")
            continue
        words, exercises = counts(notebook)
        entry = data["notebooks"][stem]
        if (entry["words"], entry["exercises"]) != (words, exercises):
            changed.append(
                f"{stem}: {entry['words']} -> {words} words, "
                f"{entry['exercises']} -> {exercises} exercises"
            )
            entry["words"], entry["exercises"] = words, exercises
    write_data(data, path)
    return changed


# ----------------------------------------------------------------------------- ordering, shards


def median_seconds(stems: Sequence[str], data: dict | None = None) -> dict[str, float]:
    """Each notebook's measured median; a notebook not yet measured gets the largest known one
    (so it is scheduled early rather than late), or 60 s when nothing is known."""
    data = hvtimes.load() if data is None else data
    known = {s: e["median"] for s, e in data["notebooks"].items()}
    fallback = max(known.values(), default=60.0)
    return {s: known.get(s, fallback) for s in stems}


def longest_first(paths: Sequence[str | Path], data: dict | None = None) -> list[str]:
    """``paths`` ordered by measured median, longest first (ties by name); notebooks not yet
    measured come first."""
    data = hvtimes.load() if data is None else data
    seconds = median_seconds([Path(p).stem for p in paths], data)

    def key(p: str):  # not yet measured: first (a new notebook may well be the longest)
        stem = Path(p).stem
        return (stem in data["notebooks"], -seconds[stem], Path(p).name)

    return sorted(map(str, paths), key=key)


def parse_shard(text: str) -> tuple[int, int]:
    """``"k/n"`` -> ``(k, n)`` with 1 <= k <= n."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"shard must look like 'k/n' (e.g. '2/4'), got {text!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= k <= n:
        raise ValueError(f"shard {text!r}: k must be between 1 and n")
    return k, n


def split(items: Sequence, weight: Callable[[object], float], n: int, key=str) -> list[list]:
    """Deal ``items`` into ``n`` shards of about equal total weight, the same way every time:
    heaviest first, each to the lightest shard so far (ties: the lower shard; items of equal
    weight in ``key`` order). Each shard keeps the heaviest-first order."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    shards, loads = [[] for _ in range(n)], [0.0] * n
    for item in sorted(items, key=lambda i: (-weight(i), key(i))):
        lightest = min(range(n), key=lambda s: (loads[s], s))
        shards[lightest].append(item)
        loads[lightest] += weight(item)
    return shards


# ----------------------------------------------------------------------------- rendering


def _spread(median: float, low: float, high: float, runs: int) -> str:
    return f"{median:.0f} [{low:.0f}–{high:.0f}]" if runs > 1 else f"{median:.0f}"


def _totals(rows: list[dict], data: dict) -> dict:
    return {
        "median": sum(r["median_s"] for r in rows),
        "min": sum(r["min_s"] for r in rows),
        "max": sum(r["max_s"] for r in rows),
        "runs": min((r["runs"] for r in rows), default=0),
        "study": sum(r["study_min"] for r in rows),
    }


def _provenance(data: dict) -> str:
    groups = {}
    for stem, e in sorted(data["notebooks"].items()):
        groups.setdefault((e["source"], e["date"], e["machine"]), []).append(stem)
    parts = []
    for (source, day, where), stems in groups.items():
        which = "every notebook" if len(groups) == 1 else ", ".join(f"`{s}`" for s in stems)
        parts.append(f"{which}: {source}, {day}, on {where}")
    return "; ".join(parts)


def render_table(data: dict | None = None) -> str:
    """The README's table: every notebook's run time (median [min–max] of its runs), study
    time, words and exercises, with totals for the lessons and the deep dives."""
    data = hvtimes.load() if data is None else data
    rows = hvtimes.rows(data)
    lines = [
        "| notebook | kind | run time (s), median [min–max] | study time (min) | words | exercises |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['notebook']}` | {r['kind']} | "
            f"{_spread(r['median_s'], r['min_s'], r['max_s'], r['runs'])} | {r['study_min']} | "
            f"{r['words']} | {r['exercises']} |"
        )
    for label, kind in (("lessons", "lesson"), ("deep dives", "deep dive")):
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            t = _totals(mine, data)
            lines.append(
                f"| **{label}, in all** | | {_spread(t['median'], t['min'], t['max'], t['runs'])}"
                f" | {t['study']} | | |"
            )
    lines += [
        "",
        f"Run times: wall time of a run top to bottom, one torch thread ({_provenance(data)}).",
    ]
    lines.append(f"Study times are estimates by a rule: {hvtimes.rule_text(data['rule'])}.")
    return "\n".join(lines)


def render_guide(data: dict | None = None) -> str:
    """The workshop guide's table: per notebook its run time and study time, in minutes."""
    data = hvtimes.load() if data is None else data
    lines = [
        "| notebook | kind | run time (min), median [min–max] | study time (min) | exercises |",
        "|---|---|---:|---:|---:|",
    ]
    for r in hvtimes.rows(data):
        run = (
            f"{r['median_s'] / 60:.1f} [{r['min_s'] / 60:.1f}–{r['max_s'] / 60:.1f}]"
            if r["runs"] > 1
            else f"{r['median_s'] / 60:.1f}"
        )
        lines.append(
            f"| `{r['notebook']}` | {r['kind']} | {run} | {r['study_min']} | {r['exercises']} |"
        )
    lines += ["", f"Study times: {hvtimes.rule_text(data['rule'])}."]
    return "\n".join(lines)


def render_line(stem: str, data: dict | None = None) -> str:
    """One notebook's line (for its first cell): run time and study time."""
    data = hvtimes.load() if data is None else data
    if stem not in data["notebooks"]:
        raise KeyError(f"{stem} has no measured time in {DATA.name}: run `make bench`")
    r = next(r for r in hvtimes.rows(data) if r["notebook"] == stem)
    run = (
        f"{r['median_s']:.0f} s (between {r['min_s']:.0f} and {r['max_s']:.0f} s)"
        if r["runs"] > 1
        else f"{r['median_s']:.0f} s"
    )
    return f"Run time about {run} on one CPU core; study time about {r['study_min']} min."


def render(arg: str | None, data: dict | None = None) -> str:
    if arg in (None, "", "table", "readme"):
        return render_table(data)
    if arg == "guide":
        return render_guide(data)
    if STEM.fullmatch(arg):
        return render_line(arg, data)
    raise ValueError(f"unknown times block {arg!r}: use table, guide or a notebook stem")


def rewrite(text: str, data: dict | None = None) -> str:
    """``text`` with every marked block filled from the data file."""

    def fill(match: re.Match) -> str:
        body = render(match.group("arg"), data)
        inline = "\n" not in match.group("body")
        sep = " " if inline else "\n"
        return f"{match.group(1)}{sep}{body}{sep}{match.group(4)}"

    return BLOCK.sub(fill, text)


def _cell_source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def rewrite_file(path: Path, data: dict | None = None) -> bool:
    """Fill the marked blocks of a markdown file or of a notebook's markdown cells; True when
    the file changed."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        changed = False
        for cell in nb["cells"]:
            source = _cell_source(cell)
            if cell["cell_type"] == "markdown" and BLOCK.search(source):
                new = rewrite(source, data)
                if new != source:
                    cell["source"], changed = new, True
        if changed:
            import nbformat  # the notebooks' own writer keeps their committed formatting

            nbformat.write(nbformat.from_dict(nb), path)
        return changed
    text = path.read_text()
    new = rewrite(text, data)
    if new != text:
        path.write_text(new)
    return new != text


# ----------------------------------------------------------------------------- checking quotes


@dataclass(frozen=True)
class Quote:
    """One time quoted in a document: whose (a notebook stem, or ``"lessons"``, ``"deep dives"``,
    ``"all"`` for a total), which quantity (``"run"``, in seconds, or ``"study"``, in minutes),
    the value, and how much its rounding hides."""

    subject: str
    quantity: str
    value: float
    tolerance: float
    where: str


def _tolerance(number: str, scale: float) -> float:
    decimals = len(number.split(".")[1]) if "." in number else 0
    return 0.5 * 10**-decimals * scale


def _unit(text: str) -> str | None:
    text = text.lower()
    stated = re.search(r"\((s|sec|seconds|min|minutes)\)", text)  # "run time (s)"
    if stated:
        return "min" if stated.group(1).startswith("min") else "s"
    text = re.sub(r"\[min[–-]max\]", "", text)  # "median [min–max]" names no unit
    if re.search(r"\bmin(ute)?s?\b", text):
        return "min"
    if re.search(r"\(s\)|\bs\b|\bsec(ond)?s?\b", text):
        return "s"
    return None


def _table_quotes(lines: list[str], where: str) -> list[Quote]:
    quotes, header = [], None
    for line in lines:
        if not line.strip().startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            continue
        first = cells[0].lower()
        stem = STEM.search(cells[0])
        if stem:
            subject = stem.group(1)
        elif "total" in first or "in all" in first:
            subject = "deep dives" if "deep" in first else "lessons" if "lesson" in first else "all"
        else:
            continue
        for head, cell in zip(header, cells, strict=False):
            quantity = (
                "study" if "study" in head else "run" if ("run" in head or "time" in head) else None
            )
            if quantity is None:
                continue
            unit = _unit(cell) or _unit(head) or ("min" if quantity == "study" else "s")
            scale = 60.0 if (unit == "min" and quantity == "run") else 1.0
            for number in re.findall(NUMBER, cell):
                quotes.append(
                    Quote(
                        subject, quantity, float(number) * scale, _tolerance(number, scale), where
                    )
                )
    return quotes


def _line_quotes(text: str, stem: str, where: str) -> list[Quote]:
    quotes = []
    for clause in re.split(r"[;\n]", text):
        quantity = "study" if "study" in clause.lower() else "run"
        for number, unit in re.findall(rf"({NUMBER})\s*(s|sec|seconds?|min|minutes?)\b", clause):
            minutes = unit.startswith("min")
            if quantity == "study":
                scale = 1.0 if minutes else 1 / 60
            else:
                scale = 60.0 if minutes else 1.0
            quotes.append(
                Quote(stem, quantity, float(number) * scale, _tolerance(number, scale), where)
            )
    return quotes


def quotes_in(text: str, where: str = "") -> list[Quote]:
    """Every time quoted inside the marked blocks of ``text``."""
    found = []
    for match in BLOCK.finditer(text):
        arg, body = match.group("arg"), match.group("body")
        if arg and STEM.fullmatch(arg):
            found += _line_quotes(body, arg, where)
        else:
            found += _table_quotes(body.splitlines(), where)
    return found


def quotes_in_table(text: str, where: str = "") -> list[Quote]:
    """Every time quoted in the markdown tables of ``text`` (a ``times.table()`` output)."""
    return _table_quotes(text.splitlines(), where)


def allowed(subject: str, quantity: str, data: dict) -> tuple[float, float] | None:
    """The range a quote of ``quantity`` for ``subject`` may take by the data file; None when
    the data file has no such notebook."""
    rule = data["rule"]
    if subject in ("lessons", "deep dives", "all"):
        kind = {"lessons": "lesson", "deep dives": "deep dive", "all": None}[subject]
        stems = [s for s, e in data["notebooks"].items() if kind in (None, e["kind"])]
    else:
        stems = [subject] if subject in data["notebooks"] else []
    if not stems:
        return None
    entries = [data["notebooks"][s] for s in stems]
    if quantity == "run":
        return sum(e["min"] for e in entries), sum(e["max"] for e in entries)
    low = sum(hvtimes.study_minutes(e, rule, e["min"]) for e in entries)
    high = sum(hvtimes.study_minutes(e, rule, e["max"]) for e in entries)
    return low, high


def disagreements(quotes: list[Quote], data: dict) -> list[str]:
    """The quotes that the data file contradicts, each in words."""
    problems = []
    for q in quotes:
        bounds = allowed(q.subject, q.quantity, data)
        unit = "s" if q.quantity == "run" else "min"
        if bounds is None:
            problems.append(f"{q.where}: quotes a time of {q.subject}, which the data file lacks")
            continue
        low, high = bounds
        if not low - q.tolerance - 1e-9 <= q.value <= high + q.tolerance + 1e-9:
            problems.append(
                f"{q.where}: {q.quantity} time of {q.subject} quoted as {q.value:g} {unit}; "
                f"the data file allows {low:g}–{high:g} {unit}"
            )
    return problems


def document_quotes(path: Path) -> list[Quote]:
    """The quotes of a markdown file's blocks, or of a notebook's markdown blocks and of the
    outputs of its cells that call ``times.table(``."""
    path = Path(path)
    if path.suffix != ".ipynb":
        return quotes_in(path.read_text(), path.name)
    nb = json.loads(path.read_text())
    found = []
    for index, cell in enumerate(nb["cells"]):
        source = _cell_source(cell)
        where = f"{path.name} cell {index}"
        if cell["cell_type"] == "markdown":
            found += quotes_in(source, where)
        elif cell["cell_type"] == "code" and "times.table(" in source:
            for output in cell.get("outputs", []):
                for mime in ("text/markdown", "text/plain"):
                    text = output.get("data", {}).get(mime) or (
                        output.get("text") if output.get("output_type") == "stream" else None
                    )
                    if text:
                        text = text if isinstance(text, str) else "".join(text)
                        found += quotes_in_table(text, where)
                        break
    return found


# ----------------------------------------------------------------------------- promises in prose

WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}
PROMISE = re.compile(
    r"\b(?:notebook|code|lesson|deep dive|everything)\s+(?:\w+\s+)?(?:runs?|takes?)\s+"
    r"(?:in\s+)?(?P<how>well under|under|less than|within|about|around|roughly)?\s*"
    rf"(?P<n>{NUMBER}|a|an|one|two|three|four|five|ten)\s+"
    r"(?P<unit>seconds?|s|minutes?|min)\b(?P<or_two>\s+or\s+two)?",
    re.IGNORECASE,
)


def run_promises(text: str) -> list[tuple[str, float, float]]:
    """Run times promised in prose outside the marked blocks ("the notebook runs in under two
    minutes"): ``(phrase, low, high)`` in seconds, the range of medians the phrase allows. A
    bound ("under", "within", "less than") allows anything up to it; "about" (or no word)
    allows half to twice the number ("a minute or two": half a minute to four minutes)."""
    outside = BLOCK.sub("", text)
    found = []
    for m in PROMISE.finditer(outside):
        n = m.group("n").lower()
        value = float(WORDS.get(n, n if n not in WORDS else 0))
        scale = 60.0 if m.group("unit").lower().startswith("min") else 1.0
        high = value * scale * (2 if m.group("or_two") else 1)
        how = (m.group("how") or "about").lower()
        if how in ("well under", "under", "less than", "within"):
            found.append((m.group(0), 0.0, high))
        else:
            found.append((m.group(0), value * scale / 2, high * 2))
    return found


def broken_promises(path: Path, data: dict) -> list[str]:
    """The run-time promises of a notebook's prose (outside marked blocks) that its measured
    median contradicts."""
    nb = json.loads(Path(path).read_text())
    entry = data["notebooks"].get(Path(path).stem)
    if entry is None:
        return []
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for phrase, low, high in run_promises(_cell_source(cell)):
            if not low <= entry["median"] <= high:
                problems.append(
                    f"{Path(path).name} cell {index}: {' '.join(phrase.split())!r}, but its "
                    f"measured median is {entry['median']:.0f} s (quote times in a marked block)"
                )
    return problems


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--data", type=Path, default=DATA)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--guide", action="store_true", help="print the workshop guide's table")
    what.add_argument("--line", metavar="STEM", help="print one notebook's line")
    what.add_argument("--write", action="store_true", help="fill the marked blocks of FILES")
    what.add_argument("--check", action="store_true", help="check the times quoted in FILES")
    what.add_argument("--counts", action="store_true", help="re-count words and exercises")
    what.add_argument(
        "--longest-first", action="store_true", help="print FILES longest first (make nbtest)"
    )
    args = parser.parse_args(argv)
    if args.longest_first:
        print(" ".join(longest_first(args.files, hvtimes.load(args.data))))
        return 0
    if args.counts:
        for change in refresh_counts(args.data):
            print(change)
        return 0
    data = hvtimes.load(args.data)
    if args.write:
        for path in args.files:
            print(f"{path}: {'rewritten' if rewrite_file(path, data) else 'unchanged'}")
        return 0
    if args.check:
        problems = [p for path in args.files for p in disagreements(document_quotes(path), data)]
        print("\n".join(problems) or "every quoted time agrees with the data file")
        return 1 if problems else 0
    print(
        render_line(args.line, data)
        if args.line
        else render_guide(data)
        if args.guide
        else render_table(data)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
