"""Build .dvc/plots/offline.html: DVC's plots page with vega, vega-lite and vega-embed inlined.

DVC's own page loads the three libraries from a CDN, so `dvc plots show` draws no Vega plot offline
(the PNG figures only). .dvc/config names this file as `plots.html_template`, so `dvc plots show` and
`dvc plots diff` write a page that needs nothing from the network. The template keeps DVC's two
placeholders, ``{refresh_tag}`` and ``{plot_divs}``, and leaves out ``{scripts}``, where DVC would put
its CDN tags.

The libraries come from their npm packages (build/<name>.min.js; BSD-3-Clause, their license text is
copied into the page). To upgrade, fetch the tarballs with npm and rebuild:

    cd "$(mktemp -d)" && npm pack vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
    .venv/bin/python tools/vega_template.py "$OLDPWD/.dvc/plots/offline.html" vega-*.tgz

vega-embed 6 needs vega 5 and draws the vega-lite 5 specs that DVC writes; vega 6 and vega-embed 7
ship no browser build for a plain <script>.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path

PACKAGES = ("vega", "vega-lite", "vega-embed")  # load order: vega-embed needs the other two
GLOBALS = {"vega": "vega", "vega-lite": "vegaLite", "vega-embed": "vegaEmbed"}
PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!--
    The page of `dvc plots show`, with the Vega libraries inlined so that it renders offline
    (built by tools/vega_template.py from the npm packages below; .dvc/config: plots.html_template).
{provenance}
    -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


class TemplateError(ValueError):
    pass


def integrity(data: bytes) -> str:
    """npm's ``dist.integrity`` of a tarball: ``sha512-<base64>``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def read_package(tarball: Path) -> dict:
    """name, version, license, integrity, license text and minified browser build of an npm tarball."""
    data = tarball.read_bytes()
    with tarfile.open(tarball, "r:gz") as tar:
        def text(member: str) -> str | None:
            try:
                f = tar.extractfile(member)
            except KeyError:
                return None
            return f.read().decode("utf-8") if f else None

        meta = json.loads(text("package/package.json") or "{}")
        name = meta.get("name")
        if name not in PACKAGES:
            raise TemplateError(f"{tarball}: package {name!r}, expected one of {', '.join(PACKAGES)}")
        js = text(f"package/build/{name}.min.js")
        if js is None:
            raise TemplateError(f"{tarball}: no package/build/{name}.min.js (a browser build)")
        license_text = text("package/LICENSE")
    return {"name": name, "version": meta["version"], "license": meta.get("license", "?"),
            "integrity": integrity(data), "license_text": license_text, "js": js}


def _script(pkg: dict) -> str:
    js = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "", pkg["js"].rstrip())  # no .map file beside the page
    if re.search(r"</script", js, re.IGNORECASE):
        raise TemplateError(f"{pkg['name']}: the script holds '</script', which would end an inline <script>")
    for placeholder in PLACEHOLDERS:
        if placeholder in js:
            raise TemplateError(f"{pkg['name']}: the script holds DVC's placeholder {placeholder}")
    if f".{GLOBALS[pkg['name']]}=" not in js.replace(" ", ""):
        raise TemplateError(f"{pkg['name']}: the script defines no global {GLOBALS[pkg['name']]}")
    return f"    <script>/* {pkg['name']}@{pkg['version']} */\n{js}\n    </script>"


def build(tarballs: list[Path]) -> str:
    packages = {p["name"]: p for p in map(read_package, tarballs)}
    missing = [n for n in PACKAGES if n not in packages]
    if missing:
        raise TemplateError(f"missing npm tarball(s) of {', '.join(missing)}")
    ordered = [packages[n] for n in PACKAGES]
    provenance = []
    for p in ordered:
        provenance.append(f"    {p['name']}@{p['version']} ({p['license']}), npm integrity {p['integrity']}")
    licenses = {p["license_text"].strip() for p in ordered if p["license_text"]}
    for text in sorted(licenses):
        provenance += ["", *(f"    {line}".rstrip() for line in text.replace("--", "- -").splitlines())]
    return PAGE.format(provenance="\n".join(provenance), scripts="\n".join(map(_script, ordered)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the template to write (.dvc/plots/offline.html)")
    parser.add_argument("tarballs", type=Path, nargs="+", help="npm pack tarballs of vega, vega-lite, vega-embed")
    args = parser.parse_args(argv)
    try:
        page = build(args.tarballs)
    except TemplateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    tmp = args.out.with_name(args.out.name + ".tmp")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(args.out)
    print(f"{args.out}: {len(page.encode()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
