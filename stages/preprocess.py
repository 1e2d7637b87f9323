"""DVC stage `preprocess@<protocol>`: raw archives -> data/processed/<protocol>.h5."""

from __future__ import annotations

from pathlib import Path

from skelrep.data.preprocess import PreprocessConfig, preprocess_generic, preprocess_protocol, write_summary
from skelrep.data.protocols import resolve_protocol
from skelrep.data.sources import validate_data_section
from skelrep.params import DATASETS, get_section, load_params
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.validation import validate_all


def main(argv=None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml protocols")
    parser.add_argument("--raw", default="data/raw", help="folder holding data/raw/<dataset>/")
    parser.add_argument("--out", default=None, help="HDF5 output (default data/processed/<protocol>.h5)")
    parser.add_argument("--summary", default=None,
                        help="JSON summary incl. skipped samples (default reports/preprocess/<protocol>.json)")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    protocol = resolve_protocol(params, args.protocol)
    cfg = PreprocessConfig.from_params(get_section(params, "preprocess"), get_section(params, "pku"))
    data_cfg = validate_data_section(protocol.dataset, get_section(params, f"data.{protocol.dataset}"))
    raw = Path(args.raw)
    out = Path(args.out or f"data/processed/{protocol.name}.h5")
    if protocol.builtin:
        summary = preprocess_protocol(protocol.name, {d: raw / d for d in DATASETS}, out, cfg,
                                      expect_published_sizes=data_cfg["source"] == "official")
    else:
        summary = preprocess_generic(protocol, raw / protocol.dataset, out, cfg, data_cfg["generic"])
    write_summary(Path(args.summary or f"reports/preprocess/{protocol.name}.json"), summary)


if __name__ == "__main__":
    run_stage(main)
