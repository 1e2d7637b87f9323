"""The built-in benchmarks: their datasets, the named splits each dataset file holds, the
protocols that select a split, and how the report names them (table, published-results key).

A *dataset* is preprocessed once into ``data/processed/<dataset>.h5`` (all its samples plus
one index set per named split); a *protocol* is a dataset and one of its splits, and every
stage after preprocessing (pretrain, features, linear, KNN) runs once per protocol. The
user's own datasets and protocols (``source: generic``) are described in params.yaml and
resolved by :mod:`skelrep.data.protocols`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    format: str               # the raw file format: ntu (.skeleton files) | pku (untrimmed videos + labels)
    base: str                 # the raw folder it builds on: NTU-120 = the NTU-60 archive + the extension
    splits: tuple[str, ...]   # the named splits its processed file holds (benchmark protocols)
    num_classes: int          # the classifier width (PKU-MMD II lives in PKU-MMD I's 51-class id space)
    title: str                # display name
    table: str                # its report table, reports/benchmarks/<table>.md, and published-results name
    detection: bool = False   # untrimmed videos for temporal detection (PKU-MMD I)

    @property
    def raw_datasets(self) -> tuple[str, ...]:
        """The raw folders its preprocessing reads, base first."""
        return (self.base, self.name) if self.base != self.name else (self.name,)


DATASETS: dict[str, BuiltinDataset] = {
    "ntu60": BuiltinDataset("ntu60", "ntu", "ntu60", ("xsub", "xview"), 60, "NTU RGB+D 60", "ntu60"),
    "ntu120": BuiltinDataset("ntu120", "ntu", "ntu60", ("xsub", "xset"), 120, "NTU RGB+D 120", "ntu120"),
    "pku1": BuiltinDataset("pku1", "pku", "pku1", ("xsub",), 51, "PKU-MMD I", "pkummd1", detection=True),
    "pku2": BuiltinDataset("pku2", "pku", "pku2", ("xsub",), 51, "PKU-MMD II", "pkummd2"),
}

# protocol -> (dataset, split): the six benchmark protocols of the field, named <dataset>-<split>
PROTOCOLS: dict[str, tuple[str, str]] = {
    f"{dataset.name}-{split}": (dataset.name, split) for dataset in DATASETS.values() for split in dataset.splits
}


def published_key(protocol: str) -> str:
    """The benchmark key of a built-in protocol in published_results.csv: ``<table>_<split>``."""
    dataset, split = PROTOCOLS[protocol]
    return f"{DATASETS[dataset].table}_{split}"
