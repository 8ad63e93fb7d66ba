"""JupyterLab as a learner meets it: the course's server, a real browser, a lesson run cell by cell.

The server starts the way ``make lab`` starts it (the same Makefile recipe and environment:
``TQDM_DISABLE`` and ``MPLBACKEND`` unset, so progress bars are live widgets and figures are
inline), on a free port, with a token and ``--no-browser``. Two options isolate it from the
person running the tests: its user settings live in a temporary folder (autosave off, so no
test ever writes a course notebook; every notebook's bytes are compared before and after), and
so does its workspace. Playwright drives Debian's Chromium (``make browser`` installs it; no
browser is downloaded); without Chromium the tests are skipped, as the site's are.

* A lesson (``00_map.ipynb``, the fastest; ``HVNOTES_LAB_LESSON`` picks another) runs with
  Run ▸ Run All Cells; the DOM must show the course's kernel, "environment OK", no error in any
  cell, every code cell run, a rendered figure, and a tqdm progress widget that appeared and
  finished.
* A learner copy (``notebooks/exercises/``): the first exercise of the lesson whose exercise is
  reached soonest is run unsolved (its checker prints a ``✗`` line), then its solution from the
  source notebook is typed into the exercise cell and the checker re-run: the line changes to ``✓``.
* The same checks fail when a lesson raises: a cell that raises is typed in after the setup cell.

About 45 s on the 2-core machine (server start ~8 s; 00_map run ~10 s).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make browser)"),
    # one server for the whole module: under pytest-xdist (make unit: --dist loadgroup) all of its
    # tests run on one worker, so two servers never share the notebooks' checkpoint folders
    pytest.mark.xdist_group("jupyterlab"),
]

LESSON = os.environ.get("HVNOTES_LAB_LESSON", "00_map.ipynb")
# The flags this machine's Chromium needs (no background connections to a closed network).
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JupyterLab user settings for the test's server: no autosave (the tests type into notebooks and
# must never write them), every cell in the DOM (no windowing), no news pop-up.
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
# Records every progress widget the page shows (tqdm.auto's bar under JupyterLab) as it comes
# and goes: its largest width, whether it turned red (tqdm's sign of an interrupted loop), and
# whether it is still on the page.
WATCH_BARS = r"""
(() => {
  const seen = new Map();
  let next = 0;
  function scan() {
    document.querySelectorAll('.widget-hprogress, .widget-vprogress, .widget-progress')
      .forEach((el) => {
        if (el.__hvBar === undefined) { el.__hvBar = next++; seen.set(el.__hvBar, {el, max: 0, danger: false}); }
        const rec = seen.get(el.__hvBar);
        const bar = el.querySelector('.progress-bar');
        if (!bar) return;
        const width = parseFloat(bar.style.width || bar.style.height || '0') || 0;
        rec.max = Math.max(rec.max, width);
        rec.danger = rec.danger || bar.classList.contains('progress-bar-danger');
      });
  }
  window.__hvBars = () => { scan(); return [...seen.values()].map((r) => ({
    max: r.max, danger: r.danger, present: r.el.isConnected })); };
  new MutationObserver(scan).observe(document, {subtree: true, childList: true, attributes: true});
})();
"""
PANEL = ".jp-NotebookPanel"
READY = """() => {
  const name = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName, .jp-NotebookPanel-toolbar .jp-Toolbar-kernelName');
  const state = document.querySelector('.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator');
  return name && !/No Kernel/.test(name.textContent) && state && state.getAttribute('data-status') === 'idle';
}"""
ERROR = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class Lab:
    """A running JupyterLab: its address, token, and the REST calls the tests make."""

    def __init__(self, port: int, token: str, process: subprocess.Popen, log: Path):
        self.url, self.token, self.process, self.log = (
            f"http://127.0.0.1:{port}",
            token,
            process,
            log,
        )

    def api(self, path: str) -> dict:
        return _get(f"{self.url}/api/{path}?token={self.token}")

    def shut_down_kernels(self) -> None:
        for session in self.api("sessions"):
            request = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}?token={self.token}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=30).close()


def _checkpoint(path: Path) -> bool:
    """A copy JupyterLab saved, not a course notebook."""
    return ".ipynb_checkpoints" in path.parts


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``make lab`` on a free port with a token; the course's notebooks are checked unchanged."""
    before = {p: p.read_bytes() for p in NOTEBOOKS.rglob("*.ipynb") if not _checkpoint(p)}
    checkpoints = {p for p in NOTEBOOKS.rglob(".ipynb_checkpoints")}
    home = tmp_path_factory.mktemp("lab")
    for name, values in SETTINGS.items():
        path = home / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    args = (
        f"--no-browser --port={port} --port-retries=0 --IdentityProvider.token={token} "
        f"--LabApp.user_settings_dir={home / 'settings'} "
        f"--LabApp.workspaces_dir={home / 'workspaces'}"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    # make lab's own recipe, with this interpreter's environment as the course's (BIN) and
    # without re-running the install step (-o install): the tests run inside that install.
    cmd = ["make", "-s", "-o", "install", "lab", f"BIN={Path(sys.executable).parent}"]
    cmd.append(f"JUPYTER_ARGS={args}")
    log = home / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(port, token, process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"make lab exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                server.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 120 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield server
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the server and the kernels it started
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
        for folder in set(NOTEBOOKS.rglob(".ipynb_checkpoints")) - checkpoints:
            # the server's copies of the notebooks it opened
            shutil.rmtree(folder, ignore_errors=True)
        changed = [p for p, data in before.items() if p.read_bytes() != data]
        for path in changed:
            path.write_bytes(before[path])
        assert not changed, f"the JupyterLab test wrote course notebooks (restored): {changed}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(WATCH_BARS)
    yield page
    page.close()
    lab.shut_down_kernels()


# ----------------------------------------------------------------------------- driving the page


def open_notebook(page, lab: Lab, relative: str) -> None:
    """Open ``notebooks/<relative>`` in a fresh workspace and wait for its kernel to be idle."""
    page.goto(f"{lab.url}/lab/tree/{relative}?reset&token={lab.token}")
    page.wait_for_selector(f"{PANEL} .jp-Cell", state="attached", timeout=60_000)
    page.wait_for_function(READY, timeout=120_000)


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).click()


def cells(page):
    return page.locator(f"{PANEL} .jp-Notebook .jp-Cell")


def prompts(page) -> list[str]:
    return page.locator(f"{PANEL} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


def wait_until_run(page, index: int, timeout: float = 300_000) -> None:
    """Until cell ``index`` shows an execution count and the kernel is idle."""
    page.wait_for_function(
        """([panel, i]) => {
          const cell = document.querySelectorAll(panel + ' .jp-Notebook .jp-Cell')[i];
          const prompt = cell && cell.querySelector('.jp-InputArea-prompt');
          return prompt && /\\[\\d+\\]/.test(prompt.textContent);
        }""",
        arg=[PANEL, index],
        timeout=timeout,
        polling=250,
    )
    page.wait_for_function(READY, timeout=timeout)


def run_all(page, timeout: float = 600_000) -> None:
    """Run ▸ Run All Cells, then wait until nothing runs (Run All stops at an error)."""
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        f"""() => {{
          const p = [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputArea-prompt')]
            .map((e) => e.textContent);
          return p.length > 0 && !p.some((t) => t.includes('*')) && /\\d/.test(p[0]);
        }}""",
        timeout=timeout,
        polling=500,
    )
    page.wait_for_function(READY, timeout=timeout)


def select(page, index: int) -> None:
    """Select cell ``index`` in command mode."""
    cells(page).nth(index).locator(".jp-InputPrompt, .jp-Cell-inputCollapser").first.click()
    page.keyboard.press("Escape")


def type_into(page, index: int, text: str) -> None:
    """Replace the source of cell ``index`` by ``text`` as typed (the editor's own input)."""
    editor = cells(page).nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    typed = editor.inner_text()
    # the editor may render a blank line as two; the code is the same
    assert _lines(typed) == _lines(text), f"the editor holds {typed!r}, not {text!r}"


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def output_text(page, index: int) -> str:
    return cells(page).nth(index).locator(".jp-OutputArea").inner_text()


def findings(page, lab: Lab) -> dict:
    """What the page shows after a run: kernel, cells run, errors, figures, progress bars."""
    session = next(s for s in lab.api("sessions") if s["path"].endswith(LESSON))
    spec = lab.api("kernelspecs")["kernelspecs"][session["kernel"]["name"]]["spec"]
    errors = [
        text
        for text in page.locator(
            f'{PANEL} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).all_inner_texts()
        if ERROR.search(text)
    ]
    return {
        "kernel_shown": page.locator(
            f"{PANEL} .jp-NotebookPanel-toolbar .jp-KernelName, "
            f"{PANEL} .jp-NotebookPanel-toolbar .jp-Toolbar-kernelName"
        )
        .first.inner_text()
        .strip(),
        "kernel_name": session["kernel"]["name"],
        "kernel_argv0": spec["argv"][0],
        "prompts": prompts(page),
        "errors": errors,
        "text": page.locator(f"{PANEL} .jp-Notebook").inner_text(),
        "figures": page.evaluate(
            f"""() => [...document.querySelectorAll('{PANEL} .jp-OutputArea-output img')]
              .filter((img) => img.complete && img.naturalWidth > 50 && img.naturalHeight > 50)
              .length"""
        ),
        "bars": page.evaluate("window.__hvBars()"),
    }


def check_lesson(found: dict, notebook: Path) -> None:
    """The lesson as a learner should see it after Run All; raises AssertionError otherwise."""
    spec = nbformat.read(notebook, as_version=4).metadata.kernelspec
    assert found["kernel_shown"] == spec.display_name, found["kernel_shown"]
    assert found["kernel_name"] == spec.name, found["kernel_name"]
    argv0 = found["kernel_argv0"]
    # "python" is the server's own interpreter (jupyter_client substitutes sys.executable)
    own = re.fullmatch(r"python[\d.]*", argv0) or Path(argv0).parent == Path(sys.executable).parent
    assert own, f"the kernel runs {argv0}, not the course's environment"
    assert not found["errors"], f"a cell shows an error: {found['errors'][0][:500]}"
    unrun = [p for p in found["prompts"] if not re.search(r"\[\d+\]", p)]
    assert not unrun, f"{len(unrun)} code cells did not run (Run All stops at an error)"
    assert "environment OK" in found["text"], "the setup cell did not print 'environment OK'"
    assert found["figures"] >= 1, "no figure rendered"
    bars = found["bars"]
    assert bars, "no progress bar appeared (tqdm's widget, live under make lab)"
    assert all(b["max"] >= 100 and not b["danger"] for b in bars), f"a bar did not finish: {bars}"
    assert not [b for b in bars if b["present"] and b["max"] < 100], bars


# ----------------------------------------------------------------------------- the tests


def test_a_lesson_runs_in_jupyterlab(page, lab):
    start = time.perf_counter()
    open_notebook(page, lab, LESSON)
    run_all(page)
    found = findings(page, lab)
    SHOTS.mkdir(parents=True, exist_ok=True)  # for a person to look at (as the site test does)
    page.screenshot(path=str(SHOTS / f"lab-{Path(LESSON).stem}.png"))
    check_lesson(found, NOTEBOOKS / LESSON)
    print(
        f"{LESSON}: {len(found['prompts'])} code cells, {found['figures']} figures, "
        f"{len(found['bars'])} progress bars, {time.perf_counter() - start:.1f} s"
    )


def test_the_checks_fail_when_a_lesson_raises(page, lab):
    open_notebook(page, lab, LESSON)
    setup = next(
        i for i, c in enumerate(nbformat.read(NOTEBOOKS / LESSON, 4).cells) if c.cell_type == "code"
    )
    select(page, setup)
    page.keyboard.press("b")  # a new cell below the setup cell
    type_into(page, setup + 1, 'raise RuntimeError("a lesson that raises")')
    run_all(page)
    found = findings(page, lab)
    assert any("a lesson that raises" in e for e in found["errors"]), found["errors"]
    with pytest.raises(AssertionError, match="shows an error"):
        check_lesson(found, NOTEBOOKS / LESSON)


def first_exercise() -> tuple[str, int, int, str]:
    """The learner copy whose first exercise is reached soonest (fewest code cells above it),
    that exercise's cell, its checker cell (the next code cell), and its solution."""
    candidates = []
    for copy in sorted((NOTEBOOKS / "exercises").glob("[0-9][0-9]_*.ipynb")):
        if copy.stem.endswith("_deep_dive"):
            continue
        nb = nbformat.read(copy, as_version=4)
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        exercises = [i for i in code if "exercise" in nb.cells[i].metadata.get("tags", [])]
        if not exercises:
            continue
        cell = exercises[0]
        checker = next(i for i in code if i > cell)
        candidates.append((sum(i < cell for i in code), copy.name, cell, checker))
    assert candidates, "no learner copy with an exercise (make student)"
    _, name, cell, checker = min(candidates)
    solution = nbformat.read(NOTEBOOKS / name, as_version=4).cells[cell].source
    return name, cell, checker, solution


def test_a_learner_solves_an_exercise_in_jupyterlab(page, lab):
    name, cell, checker, solution = first_exercise()
    open_notebook(page, lab, f"exercises/{name}")
    select(page, checker)
    menu(page, "Run", "Run All Above Selected Cell")
    wait_until_run(page, cell)
    select(page, checker)
    page.keyboard.press("Control+Enter")
    wait_until_run(page, checker)
    unsolved = output_text(page, checker)
    assert "✗" in unsolved and "✓" not in unsolved, (
        f"{name}: the unsolved checker says {unsolved!r}"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    cells(page).nth(checker).screenshot(path=str(SHOTS / "lab-exercise-unsolved.png"))

    type_into(page, cell, solution)
    page.keyboard.press("Control+Enter")  # run the exercise cell with the solution
    page.wait_for_function(READY)
    select(page, checker)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        """([panel, i]) => {
          const cell = document.querySelectorAll(panel + ' .jp-Notebook .jp-Cell')[i];
          return cell.querySelector('.jp-OutputArea').textContent.includes('✓');
        }""",
        arg=[PANEL, checker],
        timeout=120_000,
    )
    solved = output_text(page, checker)
    assert solved.strip().startswith("✓") and solved != unsolved, solved
    cells(page).nth(checker).screenshot(path=str(SHOTS / "lab-exercise-solved.png"))
    print(f"{name}: {unsolved.splitlines()[0]!r} -> {solved.splitlines()[0]!r}")
