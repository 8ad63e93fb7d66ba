"""The static site, checked as a reader would meet it.

Needs the site built by ``make book`` (``make test`` builds it first); skipped when it is absent,
so ``pytest tests`` alone still runs everywhere. The tests that open pages in a browser (rendered
math, screenshots) need Debian's chromium (``make test`` installs it when run as root, as in CI)
and are skipped without it.
"""

import html.parser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import student  # noqa: E402  (scripts/student.py: a repository tool, not part of the package)

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "build" / "book" / "_build" / "html"
SHOTS = ROOT / "build" / "screenshots"

pytestmark = pytest.mark.skipif(
    not (HTML / "index.html").exists(), reason="site not built: run `make book`"
)


class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.images, self.h1, self._in_h1 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            (self.images if tag == "img" else self.links).append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])
        self._in_h1 = self._in_h1 or tag == "h1"

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1 and data.strip():
            self.h1.append(data.strip())


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text())
    return parser


def _plain(text: str) -> str:
    """A title as text: the site typesets straight quotes as curly ones."""
    return text.replace("\u2019", "'").replace("\u2018", "'").strip()


def notebook_titles() -> dict[str, str]:
    import nbformat

    titles = {}
    for path in student.sources():
        first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
        titles[path.stem] = first.lstrip("# ").strip()
    return titles


@pytest.mark.parametrize("stem", sorted(notebook_titles()))
def test_every_notebook_has_a_page_with_its_title_and_a_figure(stem):
    page = HTML / f"{stem}.html"
    assert page.exists(), f"{page.name} missing from the site"
    parsed = parse(page)
    title = _plain(notebook_titles()[stem])
    assert any(title in _plain(h.replace("\u00b6", "")) or _plain(h) in title for h in parsed.h1), (
        parsed.h1
    )
    figures = [src for src in parsed.images if src.startswith("_images/") or "/_images/" in src]
    assert figures, f"{page.name} shows no figure"


def test_no_page_links_to_a_missing_file():
    missing = []
    for page in HTML.rglob("*.html"):
        if page.relative_to(HTML).parts[0] in ("_static", "_sources"):
            continue  # theme templates, not pages
        parsed = parse(page)
        for ref in parsed.links + parsed.images:
            url = urlparse(ref)
            if url.scheme or url.netloc or not url.path or ref.startswith("#"):
                continue  # external links and in-page anchors
            target = (page.parent / unquote(url.path)).resolve()
            if not target.exists():
                missing.append(f"{page.relative_to(HTML)} -> {ref}")
    assert not missing, "\n".join(missing[:20])


def test_intro_page_is_the_readme():
    parsed = parse(HTML / "intro.html")
    assert any("hard to vary" in h.lower() for h in parsed.h1)


class ArticleLinks(html.parser.HTMLParser):
    """The links in a page's own text (``<article>``), not in the navigation around it."""

    def __init__(self):
        super().__init__()
        self.links, self._depth = [], 0

    def handle_starttag(self, tag, attrs):
        self._depth += tag == "article"
        href = dict(attrs).get("href")
        if tag == "a" and href and self._depth:
            self.links.append(href)

    def handle_endtag(self, tag):
        self._depth -= tag == "article" and self._depth > 0


@pytest.mark.parametrize("report", ["robustness", "falsification"])
def test_each_report_is_a_page_linked_from_the_intro(report):
    page = HTML / f"{report}.html"
    assert page.exists(), f"{report}.html missing: is it in book/_toc.yml?"
    assert any(report in h.lower() for h in parse(page).h1), parse(page).h1
    intro = ArticleLinks()
    intro.feed((HTML / "intro.html").read_text())
    targets = {urlparse(ref).path for ref in intro.links}
    assert f"{report}.html" in targets, f"the intro's text does not link the report: {targets}"
    assert "instructors.html" in targets, f"the intro's text does not link the guide: {targets}"


class AssetParser(html.parser.HTMLParser):
    """The scripts and stylesheets a page loads (not the links a reader may follow)."""

    def __init__(self):
        super().__init__()
        self.assets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.assets.append(attrs["src"])
        if tag == "link" and attrs.get("rel") in ("stylesheet", "preload") and attrs.get("href"):
            self.assets.append(attrs["href"])


def math_in_source(page: Path) -> int:
    """Formulas Sphinx wrote into the page (``<span class="math ...">``, ``<div class="math ...">``)."""
    return len(re.findall(r'<(?:span|div) class="math[ "]', page.read_text()))


def test_pages_load_scripts_and_styles_from_the_site_only():
    """Offline means no CDN: every script and stylesheet, MathJax included, ships with the site."""
    remote = []
    for page in HTML.glob("*.html"):
        parser = AssetParser()
        parser.feed(page.read_text())
        remote += [f"{page.name} -> {ref}" for ref in parser.assets if urlparse(ref).netloc]
        if math_in_source(page):
            assert any(ref.startswith("_static/mathjax/") for ref in parser.assets), (
                f"{page.name} has math but does not load the site's own MathJax"
            )
    assert not remote, "\n".join(remote[:20])
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").exists(), "MathJax was not copied"


# A tqdm bar as text ("epochs:  40%|####      | 4/10 [00:01<00:02, 3.1it/s]").
TQDM_BAR = re.compile(r"\d+%\||(?:\d|\?)(?:it/s|s/it)\]")  # as in test_outputs.py


@pytest.mark.parametrize("stem", sorted(notebook_titles()))
def test_no_page_shows_a_progress_widget_or_bar(stem):
    source = (HTML / f"{stem}.html").read_text()
    assert "application/vnd.jupyter.widget-view+json" not in source, "a widget view on the page"
    text = RenderedParser()
    text.feed(source)
    bars = TQDM_BAR.findall("".join(text.text))
    assert not bars, f"{stem}.html shows progress-bar text: {bars[:3]}"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def chromium(page: str, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    """Open ``page`` of the site in headless Chromium with no network at all.

    The host-resolver rule makes every remote address unreachable, so a page that still needed a
    CDN fails here as it would on a learner's offline laptop; the virtual time budget lets MathJax
    typeset before the DOM is dumped or the screenshot taken.
    """
    base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        "--window-size=1280,1000",
        "--virtual-time-budget=20000",
    ]
    return subprocess.run(
        [CHROMIUM, *base, *flags, (HTML / page).as_uri()],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )


class RenderedParser(html.parser.HTMLParser):
    """What a reader sees of a rendered page: its text, and the MathJax elements in it."""

    def __init__(self):
        super().__init__()
        self.text, self.typeset, self.tex_errors, self._hidden = [], 0, 0, 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style")
        self.typeset += tag == "mjx-container"
        self.tex_errors += tag == "mjx-merror"

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


@needs_chromium
@pytest.mark.parametrize("stem", sorted(notebook_titles()))
def test_every_formula_is_typeset_offline(stem, tmp_path):
    page = f"{stem}.html"
    rendered = RenderedParser()
    rendered.feed(chromium(page, tmp_path, "--dump-dom").stdout)
    text = "".join(rendered.text)
    expected = math_in_source(HTML / page)
    assert expected > 0, f"{page} has no formula: is dollarmath still enabled?"
    assert rendered.typeset >= expected, (
        f"{page}: MathJax typeset {rendered.typeset} of {expected} formulas"
    )
    assert rendered.tex_errors == 0, f"{page}: {rendered.tex_errors} formulas have TeX errors"
    raw = re.findall(r".{0,30}\\[(\[].{0,30}", text)
    assert not raw, f"{page} shows raw LaTeX: {raw[:3]}"


@needs_chromium
@pytest.mark.parametrize("page", ["intro.html", "00_map.html", "02_and_mask.html"])
def test_headless_chromium_renders_the_page(page, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / page.replace(".html", ".png")
    shot.unlink(missing_ok=True)
    chromium(page, tmp_path, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 20_000, "the screenshot is missing or blank"
