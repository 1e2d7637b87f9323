"""The built-in benchmarks: their datasets, the named splits each dataset file holds, and the
protocols that select a split.

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
    base: str                 # the raw folder it builds on: NTU-120 = the NTU-60 archive + the extension
    splits: tuple[str, ...]   # the named splits its processed file holds (benchmark protocols)
    num_classes: int          # the classifier width (PKU-MMD II lives in PKU-MMD I's 51-class id space)
    title: str                # display name

    @property
    def raw_datasets(self) -> tuple[str, ...]:
        """The raw folders its preprocessing reads, base first."""
        return (self.base, self.name) if self.base != self.name else (self.name,)


DATASETS: dict[str, BuiltinDataset] = {
    "ntu60": BuiltinDataset("ntu60", "ntu60", ("xsub", "xview"), 60, "NTU RGB+D 60"),
    "ntu120": BuiltinDataset("ntu120", "ntu60", ("xsub", "xset"), 120, "NTU RGB+D 120"),
    "pku1": BuiltinDataset("pku1", "pku1", ("xsub",), 51, "PKU-MMD I"),
    "pku2": BuiltinDataset("pku2", "pku2", ("xsub",), 51, "PKU-MMD II"),
}

# protocol -> (dataset, split): the six benchmark protocols of the field, named <dataset>-<split>
PROTOCOLS: dict[str, tuple[str, str]] = {
    f"{dataset.name}-{split}": (dataset.name, split) for dataset in DATASETS.values() for split in dataset.splits
}
