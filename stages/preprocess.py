"""DVC stage `preprocess@<dataset>`: the raw folders of a dataset -> one HDF5 file with every
sample once and one index set per named split (its protocols), plus its summary and skeleton
figure under reports/preprocess/."""

from __future__ import annotations

import argparse
from pathlib import Path

from skelrep.catalog import DATASETS
from skelrep.data.preprocess import PreprocessConfig, preprocess_dataset, preprocess_generic, write_summary
from skelrep.data.sources import validate_data_section
from skelrep.errors import ParamsError
from skelrep.params import get_section, load_params
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.validation import validate_all


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--dataset", required=True, help="a key of params.yaml data")
    parser.add_argument("--raw", required=True, action="append", metavar="DIR",
                        help="a raw folder the dataset reads, data/raw/<name> (repeat: NTU-120 reads ntu60 and ntu120)")
    parser.add_argument("--out", required=True, help="the HDF5 file to write (data/processed/<dataset>.h5)")
    parser.add_argument("--reports", required=True,
                        help="reports folder to write (reports/preprocess): <dataset>.json, the summary (skipped "
                        "samples, the layout check), and <dataset>_skeleton.png, one skeleton frame with its "
                        "joint names")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    data_cfg = validate_data_section(args.dataset, get_section(params, f"data.{args.dataset}"))
    cfg = PreprocessConfig.from_params(get_section(params, "preprocess"), get_section(params, "pku"))
    raw = {Path(d).name: Path(d) for d in args.raw}
    needed = DATASETS[args.dataset].raw_datasets if args.dataset in DATASETS else (args.dataset,)
    absent = [d for d in needed if d not in raw]
    if absent:
        raise ParamsError("--raw", f"{args.dataset} reads the raw folders of {', '.join(needed)}; "
                          f"missing: {', '.join(absent)}")
    out, reports = Path(args.out), Path(args.reports)
    figure = reports / f"{args.dataset}_skeleton.png"
    if args.dataset in DATASETS:
        summary = preprocess_dataset(args.dataset, raw, out, cfg,
                                     expect_published_sizes=data_cfg["source"] == "official",
                                     figure=figure, synthetic=data_cfg["source"] == "synthetic")
    else:
        summary = preprocess_generic(args.dataset, raw[args.dataset], out, cfg, data_cfg["generic"],
                                     figure=figure)
    write_summary(reports / f"{args.dataset}.json", summary)


if __name__ == "__main__":
    run_stage(main)
