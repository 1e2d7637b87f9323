"""The ``skelrep`` command line.

Each subcommand is a pair ``(add_arguments, run)`` registered in ``SUBCOMMANDS``; ``run``
receives the parsed namespace and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from skelrep.errors import SkelrepError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
skelrep: reproducible self-supervised skeleton action representation learning (USDRL, UmURL, ISC).

The pipeline itself runs with DVC (make run, or dvc repro / dvc exp run -S key=value); these
commands help around it. Each command's --help says more.
"""


def _import_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="official USDRL checkpoint (.pth.tar)")
    parser.add_argument("dst", metavar="DST", help="encoder file to write")
    parser.add_argument("--arch", choices=("dste", "sttr"), default=None,
                        help="backbone architecture (default: inferred from the checkpoint keys)")


def _import_checkpoint(args: argparse.Namespace) -> int:
    from skelrep.methods.usdrl.official import import_official_usdrl_checkpoint  # keeps `--help` fast

    config = import_official_usdrl_checkpoint(args.src, args.dst, arch=args.arch)
    print(f"wrote {args.dst} ({', '.join(f'{k}={v}' for k, v in config.items())})")
    return 0


def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="profile name: paper (each method's official recipe, "
                        "per benchmark)")
    parser.add_argument("--method", default=None, help="the method whose recipe to apply (default: params.yaml's)")
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")


def _profile(args: argparse.Namespace) -> int:
    from skelrep.params import load_params
    from skelrep.profiles import profile_assignments, set_arguments

    params = load_params(args.params)
    print(" ".join(set_arguments(params, profile_assignments(args.name, params, args.method))))
    return 0


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="a protocol of params.yaml, e.g. ntu60-xview")
    parser.add_argument("--method", default=None, help="the method (default: params.yaml's)")
    parser.add_argument("--profile", default="default",
                        help="default: params.yaml as it is (the default); paper: its official recipe applied")
    parser.add_argument("-S", "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="an assignment as `dvc exp run -S` makes it (YAML value), applied last")
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")


def _recipe(args: argparse.Namespace) -> int:
    import yaml

    from skelrep.params import load_params
    from skelrep.profiles import assigned_params, render_settings, stage_settings
    from skelrep.validation import validate_all

    sets = []
    for item in args.sets:
        key, sep, value = item.lstrip("+").partition("=")
        if not sep:
            raise SkelrepError(f"-S {item!r}: expected KEY=VALUE")
        sets.append((key, yaml.safe_load(value)))
    profile = None if args.profile == "default" else args.profile
    final, source = assigned_params(load_params(args.params), profile=profile, method=args.method, sets=sets)
    validate_all(final)  # what would run must be valid
    stages = stage_settings(final, source, args.protocol)
    header = f"{final['method']} on {args.protocol}, profile {args.profile}: what each stage runs"
    print(render_settings(stages, header), end="")
    return 0


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="reports/compare",
                        help="folder for <benchmark>.md and results.csv (default: reports/compare)")


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skelrep.catalog import PROTOCOLS
    from skelrep.data.protocols import protocol_names
    from skelrep.params import load_params
    from skelrep.report.compare import compare
    from skelrep.report.published import load_published, table_entries

    # the user's own protocols of params.yaml too, when run from a checkout
    protocols = protocol_names(load_params("params.yaml")) if Path("params.yaml").exists() else tuple(PROTOCOLS)
    tables = compare(Path(args.out), table_entries(load_published()), protocols=protocols)
    for bench, rows in tables:
        measured = sum(r.source(bench.protocols) in ("", "measured") for r in rows)
        print(f"{Path(args.out) / (bench.name + '.md')}: {measured} measured rows")
    return 0


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")


def _check(args: argparse.Namespace) -> int:
    from skelrep.params import load_params
    from skelrep.validation import params_errors

    params = load_params(args.params)
    errors = params_errors(params)
    for err in errors:
        print(f"skelrep: error: {err}", file=sys.stderr)
    if errors:
        return 1
    print(f"{args.params}: valid (method {params['method']}; every section checked: {', '.join(params)})")
    return 0


SUBCOMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "check": (
        "validate every section of params.yaml, as each pipeline stage does before any work",
        _check_arguments,
        _check,
    ),
    "import-checkpoint": (
        "convert an official USDRL checkpoint into a skelrep encoder file",
        _import_checkpoint_arguments,
        _import_checkpoint,
    ),
    "compare": (
        ("benchmark tables over every run in mlflow.db: one row per method / stream / ablation, "
         "3s late-fusion rows, published rows"),
        _compare_arguments,
        _compare,
    ),
    "profile": (
        "print the `dvc exp run -S ...` assignments of a named profile (paper: the method's official recipe)",
        _profile_arguments,
        _profile,
    ),
    "recipe": (
        "print what every stage of a protocol runs, each value with where it came from",
        _recipe_arguments,
        _recipe,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from skelrep import __version__
    from skelrep.runtime import HelpFormatter

    parser = argparse.ArgumentParser(prog="skelrep", description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        add_arguments(sub_parser)
        sub_parser.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SkelrepError as exc:
        print(f"skelrep: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
