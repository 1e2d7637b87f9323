"""The command lines people read: every stage's ``--help`` and the ``skelrep`` command.

- help texts are plain text (no RST markup) and name a default only when there is one, once;
- every stage names the same kind of path with the same flag (:data:`FLAGS`), and dvc.yaml
  passes each flag what it means: ``--reports`` is the stage's folder under reports/ (its
  metrics.json inside), ``--out`` an output of the stage, the input flags its deps;
- ``skelrep --version`` prints the package version.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

import skelrep
from skelrep.cli import build_parser as cli_parser
from skelrep.cli import main as cli_main

from ..conftest import REPO_ROOT
from ..dvc_stages import expand_stages

STAGES = sorted(p.stem for p in (REPO_ROOT / "stages").glob("*.py"))

# every path flag a stage takes, and what it names
FLAGS = {
    "--params": "the parameters file",
    "--protocol": "a key of params.yaml protocols (not a path)",
    "--dataset": "a key of params.yaml data (not a path)",
    "--transfer": "a key of params.yaml transfer (not a path)",
    "--raw": "input: a raw dataset folder, data/raw/<dataset>",
    "--data": "input: a processed dataset file, data/processed/<dataset>.h5",
    "--source-data": "input: the processed dataset file a transfer's encoder was pretrained on",
    "--models": "input: a model folder, models/<protocol>",
    "--init-models": "input: the model folder of the encoder a fine-tune starts from, models/<protocol>",
    "--features": "input: a feature folder, data/features/<protocol>",
    "--out": "output: the stage's main output (data, models or its marker file)",
    "--reports": "output: the stage's folder under reports/ (metrics.json, curves, figures); the report reads it too",
    "--code-dir": "output: the check stage's folder of code digests, reports/code/<stage>.txt per stage script",
    "--resume-dir": "the resume checkpoint folder (not a DVC path)",
    "--no-mlflow": "a switch",
}
INPUTS = ("--raw", "--data", "--source-data", "--models", "--init-models", "--features")
RST = re.compile(r"``|:(func|mod|class|meth|attr|data):`")


@cache
def stage_module(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options(parser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@pytest.mark.parametrize("name", STAGES)
def test_stage_help_is_plain_text_with_each_default_once(name):
    parser = stage_module(name).build_parser()
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not RST.search(text), text
    for action in parser._actions:
        if action.option_strings and action.help and action.help != "show this help message and exit":
            help_text = parser._get_formatter()._expand_help(action)
            assert help_text.count("default") <= 1, help_text
    # the description keeps the docstring's first sentence, re-filled, markup gone
    first = stage_module(name).__doc__.strip().splitlines()[0].replace("``", "")
    assert " ".join(text.split()).count(" ".join(first.split()[:6])) == 1


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_uses_the_shared_flags(name):
    unknown = sorted(set(_options(stage_module(name).build_parser())) - set(FLAGS))
    assert not unknown, f"stages/{name}.py: {unknown} (one name per kind of path: {', '.join(FLAGS)})"


def _stage_definitions():
    return [(name, definition) for _, name, definition in expand_stages()]


@pytest.mark.parametrize("stage, definition", _stage_definitions(), ids=[n for n, _ in _stage_definitions()])
def test_dvc_yaml_passes_each_flag_what_it_means(stage, definition):
    argv = shlex.split(definition["cmd"])
    script = Path(argv[1]).stem
    parser = stage_module(script).build_parser()
    args = vars(parser.parse_args(argv[2:]))  # the command line parses
    outs = _paths(definition.get("outs")) + _paths(definition.get("metrics")) + _paths(definition.get("plots"))
    deps = _paths(definition.get("deps"))
    flags = {a.dest: next(s for s in a.option_strings if s.startswith("--")) for a in parser._actions
             if a.option_strings and a.dest != "help"}
    for dest, value in args.items():
        flag = flags[dest]
        for path in value if isinstance(value, list) else [value]:
            if flag == "--reports":
                assert _within(path, "reports") and not Path(path).suffix, f"{stage}: --reports {path}"
                assert all(_within(o, path) for o in outs if o.startswith("reports/")), (stage, path, outs)
            elif flag == "--out":
                assert any(_within(o, path) for o in outs), f"{stage}: --out {path} is no output"
            elif flag == "--code-dir":
                assert any(_within(o, path) for o in outs), f"{stage}: --code-dir {path} holds no output"
            elif flag in INPUTS:
                # a dep, in a dep folder, or the folder of deps (models/<p>: the two encoders)
                assert any(_within(path, d) or _within(d, path) for d in deps), f"{stage}: {flag} {path} is no dep"
    # a stage's metrics file lies in its --reports folder (metrics.json; the report's summary.json)
    for metrics in _paths(definition.get("metrics")):
        assert "reports" in args and str(Path(metrics).parent) == args["reports"], (stage, metrics)


def test_the_flag_checks_catch_a_misnamed_flag():
    """Control: a stage naming its metrics file with its own flag is caught."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics")
    assert set(_options(parser)) - set(FLAGS) == {"--metrics"}


def test_skelrep_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skelrep {skelrep.__version__}"


def test_skelrep_help_is_plain_text():
    parser = cli_parser()
    commands = parser._subparsers._group_actions[0].choices.values()
    texts = [parser.format_help()] + [sub.format_help() for sub in commands]
    for text in texts:
        assert not RST.search(text) and "(default: None)" not in text and "(default: [])" not in text, text
    assert "--version" in texts[0]
