"""What `dvc exp show`, `dvc metrics show` and `dvc metrics diff` print: readable, and working on a fresh clone.

DVC makes a column of every number of every declared metrics file, every key of params.yaml and every
stage dep. The pipeline declares one metric, reports/metrics.json: the headline numbers per protocol,
committed to git (``cache: false``) so that a clone without the DVC cache still has HEAD's numbers.
The stages' own metrics.json files (the CI gate's 144 numbers) stay outputs with unchanged contents.

The default ``dvc exp show`` cannot be narrow (DVC 3.x, no setting selects its columns): it lists every
key of params.yaml whatever the stages declare (dvc/repo/params/show.py reads the default params file
whole), every path a stage depends on (dvc/repo/experiments/serialize.py) and the headline numbers.
The readable views are ``make exps`` (the headline columns) and ``--only-changed`` (an ablation's
knob, the headline numbers and the changed outputs' hashes); README: "Using dvc, mlflow and skelrep
directly" lists the recipes and the last test runs each."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skelrep.report.collect import load_reports
from skelrep.report.tables import HEADLINE_KEYS, headline, summary

from .conftest import REPO_ROOT
from .dvc_stages import expand_stages
from .report import write_fake_reports

HEADLINE = "reports/metrics.json"
PROTOCOLS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub")
MAX_COLUMNS = 40  # the headline view of `dvc exp show` (make exps) and an ablation's --only-changed
DEPS = "^(src|stages|data|models|reports)/"  # the columns of the stage deps (--drop DEPS)


def _paths(entries) -> dict[str, dict]:
    out = {}
    for entry in entries or []:
        if isinstance(entry, dict):
            (path, options), = entry.items()
            out[path] = options or {}
        else:
            out[entry] = {}
    return out


def _declared(kind: str) -> dict[str, dict]:
    out = {}
    for _, _, definition in expand_stages():
        out.update(_paths(definition.get(kind)))
    top = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    out.update(_paths(top.get(kind)))
    return out


def _fake_headline(tmp_path: Path) -> dict[str, float]:
    reports = load_reports(write_fake_reports(tmp_path / "fake", protocols=PROTOCOLS), PROTOCOLS)
    return headline(reports)


def test_one_declared_metric_committed_to_git():
    assert _declared("metrics") == {HEADLINE: {"cache": False}}
    proc = subprocess.run(["git", "check-ignore", "-q", HEADLINE], cwd=REPO_ROOT)
    assert proc.returncode == 1, f"{HEADLINE} is git-ignored: a fresh clone would lack HEAD's numbers"


def test_the_stages_metrics_files_are_still_outputs():
    """The CI gate (.ci/check_metrics.py) reads them: still written, now plain outputs."""
    outs = set(_declared("outs"))
    for protocol in PROTOCOLS:
        for stage in ("pretrain", "linear", "knn"):
            assert f"reports/{stage}/{protocol}/metrics.json" in outs
    assert "reports/detect/pku1-xsub/metrics.json" in outs and "reports/summary.json" in outs


def test_headline_is_a_few_numbers_per_protocol_taken_from_the_summary(tmp_path):
    reports = load_reports(write_fake_reports(tmp_path, protocols=PROTOCOLS), PROTOCOLS)
    head, full = headline(reports), summary(reports)
    assert len(head) == 2 * len(PROTOCOLS) + 1  # linear and KNN everywhere, detection on PKU-MMD I
    assert len(head) <= len(HEADLINE_KEYS) * len(PROTOCOLS) < len(full)
    for key, value in head.items():
        protocol, name = key.split("/", 1)
        assert protocol in PROTOCOLS and value == full[f"{protocol}/{HEADLINE_KEYS[name]}"]
    assert head["pku1-xsub/detect_mAP"] == full["pku1-xsub/detect_mAP_action_theta0.5"]


def test_committed_headline_matches_the_reference_run():
    """reports/metrics.json and .ci/reference_metrics.json come from the same run (recorded together)."""
    committed = json.loads((REPO_ROOT / HEADLINE).read_text())
    reference = json.loads((REPO_ROOT / ".ci" / "reference_metrics.json").read_text())["metrics"]
    source = {"linear_top1": "linear/{p}/linear/top1_last", "knn_top1": "knn/{p}/knn/top1",
              "detect_mAP": "detect/{p}/detect/mAP_action_theta0.5"}
    assert {k.split("/")[0] for k in committed} == set(PROTOCOLS)
    for key, value in committed.items():
        protocol, name = key.split("/", 1)
        assert value == reference[source[name].format(p=protocol)], key


def test_committed_headline_matches_dvc_lock():
    lock = yaml.safe_load((REPO_ROOT / "dvc.lock").read_text(encoding="utf-8"))
    entries = [out for stage in lock["stages"].values() for out in stage.get("outs", []) if out["path"] == HEADLINE]
    if not entries:
        pytest.skip(f"dvc.lock has no {HEADLINE} yet (recorded by the next `dvc repro` of the report stage)")
    assert hashlib.md5((REPO_ROOT / HEADLINE).read_bytes()).hexdigest() == entries[0]["md5"], (
        f"commit {HEADLINE} together with dvc.lock")


def _make_exps_keep() -> str:
    makefile = (REPO_ROOT / "Makefile").read_text()
    return re.search(r"^EXPS_KEEP := (.+)$", makefile, re.M).group(1).replace("$$", "$")


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    cmd = [sys.executable, "-m", "dvc", *args] if args[0] != "git" else list(args)
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def clone(tmp_path) -> Path:
    """A clone without outputs or DVC cache: dvc.yaml, params.yaml, .dvc/config and the committed headline."""
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvc/config"):
        shutil.copy(REPO_ROOT / name, repo / name)
    (repo / "reports").mkdir()
    (repo / HEADLINE).write_text(json.dumps(_fake_headline(tmp_path), indent=2, sort_keys=True) + "\n")
    _dvc(repo, "git", "init", "-q")
    _dvc(repo, "git", "add", "-A")
    _dvc(repo, "git", "commit", "-q", "-m", "clone")
    return repo


def _md_header(text: str) -> list[str]:
    return [cell.strip() for cell in text.splitlines()[0].strip().strip("|").split("|")]


def test_dvc_exp_show_columns(clone):
    head = json.loads((clone / HEADLINE).read_text())
    rows = json.loads(_dvc(clone, "exp", "show", "--json").stdout)
    metrics = rows[0]["data"]["metrics"]
    assert list(metrics) == [HEADLINE] and metrics[HEADLINE]["data"] == head  # the only metric columns
    default = _md_header(_dvc(clone, "exp", "show", "--md", "--no-pager").stdout)
    kept = _md_header(_dvc(clone, "exp", "show", "--md", "--no-pager", "--keep", _make_exps_keep(),
                           "--drop", ".*").stdout)
    assert len(kept) <= MAX_COLUMNS < len(default), (len(kept), len(default))
    assert set(head) | {"Experiment", "method", "usdrl.train.lr", "usdrl.train.modality"} <= set(kept)
    assert not any(c.startswith(("src/", "stages/", "data/", "models/", "reports/")) for c in kept)  # no deps


def _columns(repo: Path, *args: str) -> list[str]:
    return _md_header(_dvc(repo, "exp", "show", "--md", "--no-pager", *args).stdout)


def _leaves(mapping: dict) -> set[str]:
    """Every key as `dvc exp show` names its column: DVC's own flattening (nested keys joined by dots)."""
    from dvc.utils.flatten import flatten

    return set(flatten(mapping))


def _dep_paths() -> set[str]:
    return {path for _, _, definition in expand_stages() for path in _paths(definition.get("deps"))}


def test_dvc_exp_show_default_view_is_every_key_and_every_dep(clone):
    """Why the default view is wide (module docstring): DVC's choice, whatever dvc.yaml declares."""
    head = json.loads((clone / HEADLINE).read_text())
    keys = _leaves(yaml.safe_load((clone / "params.yaml").read_text(encoding="utf-8")))
    default = _columns(clone)
    assert default[:2] == ["Experiment", "Created"]
    assert set(default[2:]) == set(head) | keys | _dep_paths()
    assert len(default) == 2 + len(head) + len(keys) + len(_dep_paths()), len(default)


KNOB = "usdrl.loss.w_xcorr"


def _from_the_encoder(path: str) -> bool:
    """The deps a pretraining knob changes: the trained encoders and everything computed from them."""
    if path.startswith("models/"):
        return path.endswith("/encoder.pt")
    # not the check stage's outputs: params.yaml valid, and the code digests (a knob is no code)
    return path.startswith(("data/features/", "reports/")) and not (
        path == "reports/params_check.txt" or path.startswith("reports/code/"))


@pytest.fixture
def ablation(clone) -> Path:
    """The clone with the committed dvc.lock, then a commit as `dvc exp run -S usdrl.loss.w_xcorr=0`
    leaves one: the params.yaml line rewritten by DVC's own -S writer, new headline numbers and, in
    dvc.lock, new hashes of the deps computed from the encoder (the data and random-init encoders stay)."""
    from dvc.utils.hydra import apply_overrides

    shutil.copy(REPO_ROOT / "dvc.lock", clone / "dvc.lock")
    _dvc(clone, "git", "add", "dvc.lock")
    _dvc(clone, "git", "commit", "-q", "-m", "dvc.lock")
    apply_overrides(clone / "params.yaml", [f"{KNOB}=0"])
    head = json.loads((clone / HEADLINE).read_text())
    (clone / HEADLINE).write_text(json.dumps({k: v + 1.0 for k, v in head.items()}, indent=2) + "\n")
    lock = yaml.safe_load((clone / "dvc.lock").read_text(encoding="utf-8"))
    changed = set()
    for stage in lock["stages"].values():
        for dep in stage.get("deps", []):
            if _from_the_encoder(dep["path"]) and "md5" in dep:
                suffix = ".dir" if dep["md5"].endswith(".dir") else ""
                dep["md5"] = hashlib.md5(f"ablation {dep['path']}".encode()).hexdigest() + suffix
                changed.add(dep["path"])
    assert changed, "dvc.lock records no deps computed from the encoder"
    (clone / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    _dvc(clone, "git", "commit", "-q", "-a", "-m", f"{KNOB}=0")
    return clone


def test_dvc_exp_show_only_changed_shows_an_ablation(ablation):
    """The baseline and the ablation: the one knob, the headline numbers, the hashes that changed."""
    head = json.loads((ablation / HEADLINE).read_text())
    keys = _leaves(yaml.safe_load((ablation / "params.yaml").read_text(encoding="utf-8")))
    changed = _columns(ablation, "-n", "2", "--only-changed")
    assert len(changed) <= MAX_COLUMNS, (len(changed), changed)
    assert [c for c in changed if c in keys] == [KNOB]
    rest = set(changed) - set(head) - {KNOB, "Experiment", "Created"}
    assert set(head) <= set(changed) and rest and rest <= _dep_paths(), rest
    bare = _columns(ablation, "-n", "2", "--only-changed", "--drop", DEPS)
    assert bare == ["Experiment", "Created", *head, KNOB]


def _readme_recipes() -> list[list[str]]:
    """The `dvc exp show` lines of the README's recipes (Using dvc, mlflow and skelrep directly)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^\*\*Experiments\.\*\*.*?^```bash\n(.*?)^```", text, re.M | re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("dvc exp show")]


def test_readme_exp_show_recipes(ablation):
    """Each recipe works on this DVC version; those that pick columns stay readable."""
    recipes = _readme_recipes()
    assert len(recipes) >= 3 and any(DEPS in recipe for recipe in recipes)
    for recipe in recipes:
        columns = _columns(ablation, *recipe[3:], "-n", "2")
        assert columns[0] == "Experiment", recipe
        if "--keep" in recipe or "--only-changed" in recipe:
            assert len(columns) <= MAX_COLUMNS, (recipe, len(columns))


def test_dvc_metrics_show_and_diff_on_a_fresh_clone(clone):
    """No DVC cache, no outputs: HEAD's numbers come from git; a changed workspace file diffs against them."""
    shown = _dvc(clone, "metrics", "show").stdout.splitlines()
    assert len(shown) == 2 and shown[1].startswith(HEADLINE)  # one row: header + the headline file
    assert max(map(len, shown)) < 400  # was ~2,900 characters with every stage's metrics declared
    head = json.loads((clone / HEADLINE).read_text())
    key = "ntu60-xsub/linear_top1"
    (clone / HEADLINE).write_text(json.dumps({**head, key: head[key] + 1.0}, indent=2, sort_keys=True) + "\n")
    proc = _dvc(clone, "metrics", "diff", "--json")
    assert "failed to load" not in proc.stderr.lower(), proc.stderr
    diff = json.loads(proc.stdout)[HEADLINE]
    assert list(diff) == [key] and diff[key]["old"] == head[key] and diff[key]["diff"] == pytest.approx(1.0)
