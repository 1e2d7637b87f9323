"""reports/index.html: the page's structure from a small synthetic reports folder, and the page as a
real headless browser (Chromium) renders it.

The browser test serves the folder the report stage wrote from a local HTTP server and loads, in
headless Chromium, a check page of the same origin that shows index.html in a frame and writes
what the browser made of it (tables, captions, cells, images decoded, every URL) into its own DOM,
which ``--dump-dom`` prints. Without a Chromium binary it skips, unless SKELREP_REQUIRE_BROWSER=1
(CI installs Chromium and sets it), where it fails.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from PIL import Image

from skelrep.data.protocols import protocol_names
from skelrep.params import load_params
from skelrep.report.collect import load_reports
from skelrep.report.html import INDEX, Figure, FigureGroup, find_figures, render_html
from skelrep.report.published import load_published, table_entries
from skelrep.report.tables import (
    MEASURED,
    Benchmark,
    Row,
    benchmark_heading,
    build_tables,
    cell_text,
    columns,
)
from tests.report import fake_params, stage_params, write_fake_reports

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("report_stage_html", REPO / "stages" / "report.py")
report_stage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_stage)

PROTOCOLS = ("ntu60-xsub", "pku1-xsub")
TRANSFERS = {"ntu60-xsub-to-pku1-xsub": ("ntu60-xsub", "pku1-xsub")}
VIDEOS = ("0291-L", "0291-M")  # fake detection timelines, per detection protocol
BROWSER_TIMEOUT_S = 60


# --- a reports folder as the pipeline leaves it -------------------------------------------------


def _png(path: Path, size: tuple[int, int], color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The reports folder after the report stage ran on fake outputs of the earlier stages
    (figures of its own, detection timelines and a preprocessed skeleton of theirs)."""
    root = tmp_path_factory.mktemp("html")
    reports = write_fake_reports(root, protocols=PROTOCOLS, finetune=PROTOCOLS, transfers=TRANSFERS)
    for i, video in enumerate(VIDEOS):  # the dense protocol's timelines, then the window protocol's
        _png(reports / "detect" / "pku1-xsub" / "timelines" / f"{video}.png", (200, 50), (30 * i, 90, 160))
        _png(reports / "detect" / "pku1-xsub" / "timelines" / "window" / f"{video}.png", (200, 50), (160, 90, 30 * i))
    _png(reports / "preprocess" / "ntu60_skeleton.png", (64, 72), (20, 120, 40))
    params = stage_params(mlflow=False)
    params["transfer"] = {name: {"source": s, "source_dataset": s.split("-")[0], "target": t,
                                 "target_dataset": t.split("-")[0]} for name, (s, t) in TRANSFERS.items()}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with contextlib.chdir(root):
        report_stage.main(["--no-mlflow", "--reports", str(reports)])
    return reports


@pytest.fixture(scope="module")
def tables(site):
    params = load_params(site.parent / "params.yaml")
    transfers = {name: entry["source"] for name, entry in params["transfer"].items()}
    reports = load_reports(site, protocol_names(params), transfers)
    return params, reports, build_tables(params, reports, table_entries(load_published()))


def expected_rows(bench: Benchmark, rows: list[Row]) -> list[list[str]]:
    """The cells of a table as the table data gives them: label, values, source."""
    cols = columns(bench, rows)
    shown = [(p, k) for p, k, _ in cols]
    return [[row.label, *(cell_text(row, p, k) for p, k, _ in cols), row.source(shown) or MEASURED] for row in rows]


def pngs_under(reports: Path) -> set[str]:
    """Every image the page must show: the report's figures, the timelines, the skeletons."""
    found = [*reports.glob("figures/*.png"), *reports.glob("detect/*/timelines/**/*.png"),
             *reports.glob("preprocess/*_skeleton.png")]
    return {p.relative_to(reports).as_posix() for p in found}


# --- the page's structure -----------------------------------------------------------------------


class PageParser(HTMLParser):
    """Tables (caption, body rows of cell texts), images and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.images: list[dict[str, str]] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: set[str] = set()
        self._text: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.urls += [(tag, name, value or "") for name, value in attrs.items() if name in ("src", "href")]
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append({"caption": None, "rows": []})
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[-1]["rows"].append([])
        elif tag in ("caption", "th", "td"):
            self._text = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "caption":
            self.tables[-1]["caption"] = "".join(self._text)
            self._text = None
        elif tag in ("th", "td") and self._text is not None:
            if self._in_body:
                self.tables[-1]["rows"][-1].append("".join(self._text))
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def test_the_tables_hold_the_table_data(site, tables):
    _, _, data = tables
    page = parse((site / INDEX).read_text(encoding="utf-8"))
    assert [t["caption"] for t in page.tables] == [benchmark_heading(b).removeprefix("# ") for b, _ in data]
    for (bench, rows), table in zip(data, page.tables, strict=True):
        assert table["rows"] == expected_rows(bench, rows), bench.name
    # the fixture's numbers are there: a measured row, a baseline row, a published row per table
    ntu60 = page.tables[0]["rows"]
    assert ntu60[0][:3] == ["USDRL (DSTE, joint) — measured", "40.0", "41.2 (ep 10)"]
    assert ntu60[1][0].startswith("Random-init baseline") and ntu60[2][0].startswith("Hand-crafted baseline")
    assert any(r[0].endswith("(paper)") for r in ntu60)
    transfer = page.tables[-1]["rows"]
    assert transfer[0][:3] == ["USDRL (DSTE, joint) — measured", "30.0", "31.0 (ep 15)"]


def test_every_image_is_relative_and_exists(site):
    page = parse((site / INDEX).read_text(encoding="utf-8"))
    sources = [img["src"] for img in page.images]
    assert len(sources) == len(set(sources))
    # all the figures there are, the earlier stages' too, and nothing else
    assert set(sources) == pngs_under(site)
    assert {"figures/pretrain_loss.png", "detect/pku1-xsub/timelines/window/0291-M.png",
            "preprocess/ntu60_skeleton.png"} <= set(sources)
    for img in page.images:
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|/)", img["src"]), img["src"]  # no scheme, not absolute
        assert (site / img["src"]).is_file(), img["src"]
        assert img.get("alt"), img["src"]


def test_no_external_url_and_no_script(site):
    text = (site / INDEX).read_text(encoding="utf-8")
    page = parse(text)
    assert page.urls, "the page links its figures and files"
    for tag, attribute, value in page.urls:
        assert "://" not in value and not value.startswith("//"), (tag, attribute, value)
        if not value.startswith("#"):  # a file of the reports folder (the Markdown tables, results.csv)
            assert (site / value).is_file(), value
    assert not page.tags & {"script", "link", "iframe", "object", "embed", "base"}
    assert "http://" not in text and "https://" not in text and "url(" not in text and "@import" not in text


def test_the_configuration_is_shown(site, tables):
    params, reports, _ = tables
    text = (site / INDEX).read_text(encoding="utf-8")
    section = text[text.index('<section id="configuration">'):]
    assert "<dd>USDRL (DSTE, joint)</dd>" in section
    assert f"<dd>{', '.join(reports)}</dd>" in section  # the protocols run
    assert "ntu60: synthetic; pku1: synthetic" in section  # the data they read
    shown = yaml.safe_load(html.unescape(re.search(r"<pre>(.*?)</pre>", section, re.S).group(1)))
    assert shown["method"] == "usdrl" and shown["usdrl"] == params["usdrl"]
    assert set(shown["data"]) == {"ntu60", "pku1"} and list(shown["protocols"]) == list(PROTOCOLS)


def test_the_page_is_deterministic(site, tables):
    params, reports, data = tables
    first = render_html(params, data, tuple(reports), find_figures(site))
    assert first == render_html(params, data, tuple(reports), find_figures(site))
    assert first == (site / INDEX).read_text(encoding="utf-8")  # what the stage wrote
    assert str(site) not in first and str(site.parent) not in first


def test_text_is_escaped():
    evil = '<script>alert("x")</script> & co'
    params = fake_params()
    params["usdrl"]["note"] = "</pre><b>bold</b>"
    bench = Benchmark("custom", f"Your {evil}", ("p1",))
    row = Row(f"{evil} — measured", "USDRL", "x", {("p1", "knn/top1"): (12.5, MEASURED)})
    groups = [FigureGroup(f"Group {evil}", (Figure('figures/a"b&c.png', f"alt {evil}"),))]
    page = render_html(params, [(bench, [row])], (), groups)
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert 'src="figures/a&quot;b&amp;c.png"' in page
    parsed = parse(page)
    assert parsed.tables[0]["rows"][0][0] == f"{evil} — measured"  # the text itself, decoded
    assert parsed.images[0] == {"src": 'figures/a"b&c.png', "alt": f"alt {evil}"}


# --- in a real browser --------------------------------------------------------------------------

CHECK_PAGE = "/__check__.html"
# the check page: index.html in a frame of the same origin; once it has loaded (images included),
# what the browser rendered, as JSON, into <pre id="result">
CHECK_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>check</title></head><body>
<iframe id="page" src="index.html" style="width:1280px;height:2000px"></iframe>
<pre id="result">pending</pre>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument, win = frame.contentWindow;
  const images = Array.from(doc.images);
  const decoded = (img) => img.complete && img.naturalWidth > 0;
  const tables = Array.from(doc.querySelectorAll("table"));
  document.getElementById("result").textContent = JSON.stringify({
    tables: tables.length,
    captions: tables.map((t) => t.caption ? t.caption.textContent : null),
    rows: tables.map((t) => Array.from(t.tBodies[0].rows).map((r) => Array.from(r.cells).map((c) => c.textContent))),
    images: images.map((i) => i.getAttribute("src")),
    not_decoded: images.filter((i) => !decoded(i)).map((i) => i.getAttribute("src")),
    not_laid_out: images.filter((i) => i.getBoundingClientRect().width < 1).map((i) => i.getAttribute("src")),
    urls: Array.from(doc.querySelectorAll("[src], [href]")).map((e) => e.src || e.href),
    resources: win.performance.getEntriesByType("resource").map((e) => e.name),
    scripts: doc.scripts.length,
    page_width: doc.documentElement.scrollWidth,
    view_width: win.innerWidth,
  });
});
</script>
</body></html>
"""
# flags without which headless Chromium tries to reach the network (and hangs or fails offline)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


@pytest.fixture
def chromium() -> str:
    """The Chromium binary; skip without one, unless SKELREP_REQUIRE_BROWSER=1 (CI): fail.
    A fixture, requested first: no reports folder is built for a test that skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found:
        return found
    message = "no headless browser (chromium, chromium-browser or google-chrome on PATH): the HTML report is "
    if os.environ.get("SKELREP_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "not checked, and SKELREP_REQUIRE_BROWSER=1 requires it")
    pytest.skip(message + "checked for structure only (apt-get install chromium)")


class _Handler(SimpleHTTPRequestHandler):
    """Serves the reports folder and the check page; records every requested path."""

    requested: list[str]

    def do_GET(self):  # the name http.server dispatches to
        self.requested.append(self.path)
        if self.path == CHECK_PAGE:
            body = CHECK_HTML.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format, *args):  # http.server's signature
        pass  # the requests are recorded above; no noise on stderr


@pytest.fixture
def server(site):
    """``(base URL, requested paths)`` of a local server of ``site`` on a free port."""
    requested: list[str] = []
    handler = functools.partial(type("Handler", (_Handler,), {"requested": requested}), directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requested
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def run_browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    # a fresh profile each time: no cache, so every image is really requested
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=BROWSER_TIMEOUT_S)


def test_a_headless_browser_renders_the_page(chromium, site, tables, server, tmp_path):
    base, requested = server
    _, _, data = tables
    proc = run_browser(chromium, tmp_path / "profile-dom", "--window-size=1400,2200", "--virtual-time-budget=10000",
                       "--dump-dom", base + CHECK_PAGE)
    match = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert proc.returncode == 0 and match and match.group(1) != "pending", (
        f"no result from the browser (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    seen = json.loads(html.unescape(match.group(1)))

    # the tables: one per benchmark, captioned, every cell as the table data says
    assert seen["tables"] == len(data)
    assert seen["captions"] == [benchmark_heading(b).removeprefix("# ") for b, _ in data]
    assert seen["rows"] == [expected_rows(bench, rows) for bench, rows in data]
    # every image decoded (naturalWidth > 0) and laid out; all the figures of the folder
    assert sorted(seen["images"]) == sorted(pngs_under(site))
    assert seen["not_decoded"] == [] and seen["not_laid_out"] == []
    assert seen["scripts"] == 0
    # wide tables scroll inside their box: the page itself is no wider than the window
    assert seen["page_width"] <= seen["view_width"]
    # nothing left the local server: every URL the page holds or loaded is of its origin ...
    for url in seen["urls"] + seen["resources"]:
        assert url.startswith(base + "/"), url
    assert len(seen["resources"]) >= len(seen["images"])
    # ... and the server saw every image requested
    assert {"/" + src for src in seen["images"]} <= set(requested)
    assert {"/" + INDEX, CHECK_PAGE} <= set(requested)

    shot = tmp_path / "page.png"
    proc = run_browser(chromium, tmp_path / "profile-shot", "--window-size=1280,2000", "--virtual-time-budget=10000",
                       f"--screenshot={shot}", f"{base}/{INDEX}")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-3000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        # a rendered page, not a blank one: text, table shading, coloured figures
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 50
