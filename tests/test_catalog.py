"""The catalog is the one place that names the built-in benchmarks: the protocols, the report
tables and the published-results keys all derive from it."""

from __future__ import annotations

from skelrep.catalog import DATASETS, PROTOCOLS, published_key
from skelrep.report.published import load_published
from skelrep.report.tables import BENCHMARKS


def test_the_six_benchmark_protocols():
    assert PROTOCOLS == {"ntu60-xsub": ("ntu60", "xsub"), "ntu60-xview": ("ntu60", "xview"),
                         "ntu120-xsub": ("ntu120", "xsub"), "ntu120-xset": ("ntu120", "xset"),
                         "pku1-xsub": ("pku1", "xsub"), "pku2-xsub": ("pku2", "xsub")}
    assert DATASETS["ntu120"].raw_datasets == ("ntu60", "ntu120")  # NTU-60 archive + extension
    assert all(d.raw_datasets == (d.name,) for name, d in DATASETS.items() if name != "ntu120")


def test_every_protocol_is_in_one_table_and_has_published_numbers():
    tabled = [p for bench in BENCHMARKS for p in bench.protocols]
    assert sorted(tabled) == sorted(PROTOCOLS)
    assert [b.name for b in BENCHMARKS if b.detection] == ["pkummd1"]
    keys = set(load_published()["benchmark"])
    assert {published_key(p) for p in PROTOCOLS} <= keys, keys
