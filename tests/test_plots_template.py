"""`dvc plots show` renders offline: the page template inlines vega, vega-lite and vega-embed.

DVC's own page loads the three libraries from a CDN (its Vega plots stay blank without a network).
.dvc/config names .dvc/plots/offline.html (built by tools/vega_template.py) as the page template.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
import sys
import tarfile

import pytest

from .conftest import REPO_ROOT

TEMPLATE = REPO_ROOT / ".dvc" / "plots" / "offline.html"
# an attribute or CSS url() that makes a browser fetch something: none may point off the page
_FETCH = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?)\s*(?:https?:)?//""", re.I)


def _tool():
    spec = importlib.util.spec_from_file_location("vega_template", REPO_ROOT / "tools" / "vega_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _markup(page: str) -> str:
    """The page without the bodies of its inline scripts (the libraries hold URL strings of their own)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S | re.I)


def test_dvc_config_names_the_offline_template():
    from dvc.config import Config

    configured = Config(dvc_dir=str(REPO_ROOT / ".dvc"))["plots"]["html_template"]  # as `dvc plots` reads it
    assert (REPO_ROOT / ".dvc" / configured).resolve() == TEMPLATE.resolve()
    assert TEMPLATE.is_file()


def test_template_inlines_the_three_libraries_and_loads_nothing():
    page = TEMPLATE.read_text(encoding="utf-8")
    markup = _markup(page)
    assert page.count("{plot_divs}") == 1 and markup.count("{plot_divs}") == 1
    assert "{scripts}" not in page, "DVC would insert its CDN <script> tags there"
    assert not re.search(r"<script[^>]*\bsrc\s*=", markup, re.I), "every library is inline"
    assert not _FETCH.search(markup), _FETCH.search(markup)
    scripts = re.findall(r"<script>/\* ([\w-]+)@([\d.]+) \*/\n(.*?)\n\s*</script>", page, flags=re.S)
    assert [name for name, _, _ in scripts] == ["vega", "vega-lite", "vega-embed"]  # load order
    for name, version, body in scripts:
        assert len(body) > 50_000, f"{name}: {len(body)} characters, not the library"
        glob = {"vega": "vega", "vega-lite": "vegaLite", "vega-embed": "vegaEmbed"}[name]
        assert f".{glob}=" in body, f"{name} defines no global {glob}"
        assert f"{name}@{version} (BSD-3-Clause), npm integrity sha512-" in page  # provenance recorded
    assert re.search(r'version="5\.\d+\.\d+"', scripts[0][2])  # vega 5: what vega-embed 6 needs


def test_dvc_plots_show_writes_a_page_with_no_cdn(tmp_path):
    """The real command in a small repository with this .dvc/config and template."""
    (tmp_path / ".dvc" / "plots").mkdir(parents=True)
    (tmp_path / ".dvc" / "config").write_text((REPO_ROOT / ".dvc" / "config").read_text())
    (tmp_path / ".dvc" / "plots" / "offline.html").write_text(TEMPLATE.read_text(encoding="utf-8"))
    (tmp_path / "curve.csv").write_text("epoch,top1\n1,10.0\n2,20.0\n")
    (tmp_path / "dvc.yaml").write_text("plots:\n- curve.csv:\n    x: epoch\n    y: top1\n")
    proc = subprocess.run([sys.executable, "-m", "dvc", "plots", "show"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin",
                                                       "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "dvc_plots" / "index.html").read_text(encoding="utf-8")
    markup = _markup(page)
    assert "vegaEmbed('#" in page and "curve.csv" in page
    assert not _FETCH.search(markup) and "cdn." not in markup
    assert "{plot_divs}" not in page and "{refresh_tag}" not in page


def test_dvc_plots_output_is_ignored():
    lines = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "/dvc_plots/" in lines
    proc = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO_ROOT)
    assert proc.returncode == 0


def _tarball(tmp_path, name: str, js: str, license_text: str | None = "Copyright (c) 2015, Someone\n"):
    path = tmp_path / f"{name}.tgz"
    with tarfile.open(path, "w:gz") as tar:
        files = {"package/package.json": json.dumps({"name": name, "version": "5.0.0", "license": "BSD-3-Clause"}),
                 f"package/build/{name}.min.js": js}
        if license_text:
            files["package/LICENSE"] = license_text
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _fake_js(name: str) -> str:
    glob = {"vega": "vega", "vega-lite": "vegaLite", "vega-embed": "vegaEmbed"}[name]
    return f"!function(e){{e.{glob}={{}}}}(this);\n//# sourceMappingURL={name}.min.js.map\n"


def test_tool_builds_the_page_from_npm_tarballs(tmp_path):
    tool = _tool()
    tarballs = [_tarball(tmp_path, n, _fake_js(n)) for n in ("vega-embed", "vega", "vega-lite")]
    page = tool.build(tarballs)
    markup = _markup(page)
    assert re.findall(r"<script>/\* ([\w-]+)@", page) == ["vega", "vega-lite", "vega-embed"]
    assert page.count("{plot_divs}") == 1 and "{scripts}" not in page and "sourceMappingURL" not in page
    assert "Copyright (c) 2015, Someone" in markup and not _FETCH.search(markup)
    # what the committed template was built with: the same page shape
    assert _markup(TEMPLATE.read_text(encoding="utf-8")).split("<!--")[0] == markup.split("<!--")[0]


@pytest.mark.parametrize(("js", "message"), [
    ("e.vega={};'</script>'", "</script"),
    ("e.vega={};'{plot_divs}'", "placeholder"),
    ("e.other={}", "no global"),
])
def test_tool_rejects_scripts_that_would_break_the_page(tmp_path, js, message):
    tool = _tool()
    others = [_tarball(tmp_path, n, _fake_js(n)) for n in ("vega-lite", "vega-embed")]
    tarballs = [_tarball(tmp_path, "vega", js), *others]
    with pytest.raises(tool.TemplateError, match=message):
        tool.build(tarballs)
    with pytest.raises(tool.TemplateError, match="missing"):
        tool.build(tarballs[1:])
