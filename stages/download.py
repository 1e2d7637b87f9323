"""DVC stage `download@<dataset>`: raw archives as distributed (or the user's generic dataset), plus manifest.json."""

from __future__ import annotations

import argparse
import logging

from skelrep.data.sources import download_dataset, validate_data_section
from skelrep.params import get_section, load_params, repo_root
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.validation import validate_all

log = logging.getLogger("stages.download")


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--dataset", required=True, help="a key of params.yaml data")
    parser.add_argument("--out", required=True, help="output folder (data/raw/<dataset>)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    cfg = validate_data_section(args.dataset, get_section(params, f"data.{args.dataset}"))
    root = repo_root()
    out = download_dataset(args.dataset, cfg, args.out,
                           cache_dir=root / "data" / ".download-cache" / args.dataset)
    log.info("%s (%s) ready in %s", args.dataset, cfg["source"], out)


if __name__ == "__main__":
    run_stage(main)
