"""DVC stage `preprocess@<protocol>`: raw archives -> data/processed/<protocol>.h5."""

from __future__ import annotations

from pathlib import Path

from skelrep.data.preprocess import PreprocessConfig, preprocess_protocol, write_summary
from skelrep.data.sources import validate_data_section
from skelrep.params import PROTOCOLS, get_section, load_params
from skelrep.runtime import run_stage, setup_logging, stage_parser


def main(argv=None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, choices=list(PROTOCOLS))
    parser.add_argument("--raw", default="data/raw", help="folder holding data/raw/<dataset>/")
    parser.add_argument("--out", default=None, help="HDF5 output (default data/processed/<protocol>.h5)")
    parser.add_argument("--summary", default=None,
                        help="JSON summary incl. skipped samples (default reports/preprocess/<protocol>.json)")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    cfg = PreprocessConfig.from_params(get_section(params, "preprocess"), get_section(params, "pku"))
    dataset, _ = PROTOCOLS[args.protocol]
    data_cfg = validate_data_section(dataset, get_section(params, f"data.{dataset}"))
    raw = Path(args.raw)
    summary = preprocess_protocol(
        args.protocol, {d: raw / d for d in ("ntu60", "ntu120", "pku1", "pku2")},
        Path(args.out or f"data/processed/{args.protocol}.h5"), cfg,
        expect_published_sizes=data_cfg["source"] == "official")
    write_summary(Path(args.summary or f"reports/preprocess/{args.protocol}.json"), summary)


if __name__ == "__main__":
    run_stage(main)
