"""Published reference numbers (``published_results.csv``, shipped with the package).

The CSV is a copy of the project's reference list of paper figures. Only the methods that
``skelrep`` implements go into the benchmark tables (each registered method's
``MethodInfo.published_as``, in registry order), and only the metrics those tables show
(linear top-1, KNN-1, PKU-MMD I detection).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ..catalog import PROTOCOLS, published_key
from ..methods import METHODS

# CSV benchmark key -> skelrep protocol (skelrep.catalog names both)
BENCHMARK_TO_PROTOCOL = {published_key(protocol): protocol for protocol in PROTOCOLS}


# (CSV protocol column, CSV metric) -> skelrep metric key. Published accuracies are
# best-on-test (the best test accuracy over periodic evaluations, as the official code bases
# report), so the linear number maps to the best-on-test key.
METRIC_KEYS = {
    ("linear", "top1_acc"): "linear/top1_best_on_test",
    ("knn", "knn1_acc"): "knn/top1",
    ("detection", "mAP_action_theta0.5"): "detect/mAP_action_theta0.5",
    ("detection", "mAP_video_theta0.5"): "detect/mAP_video_theta0.5",
    ("detection", "mAP_voc_tiou0.1"): "detect/mAP_a_tiou0.1",
    ("detection", "mAP_voc_tiou0.3"): "detect/mAP_a_tiou0.3",
    ("detection", "mAP_voc_tiou0.5"): "detect/mAP_a_tiou0.5",
    ("detection", "mAP_voc_tiou0.7"): "detect/mAP_a_tiou0.7",
}


def table_methods() -> tuple[str, ...]:
    """The published-CSV names of the methods skelrep implements, in table (registry) order."""
    return tuple(info.published_as for info in METHODS.values() if info.published_as)


def load_published() -> pd.DataFrame:
    """The full reference CSV (every method and task), in file order."""
    with resources.files(__package__).joinpath("published_results.csv").open(encoding="utf-8") as f:
        return pd.read_csv(f, dtype={"value": float}, keep_default_na=False)


def table_entries(published: pd.DataFrame) -> pd.DataFrame:
    """Rows of the implemented methods that the benchmark tables show.

    Columns: method, variant, modality, protocol (skelrep name), metric (skelrep key), value,
    source; ordered by method (``table_methods()``), then file order.
    """
    methods = table_methods()
    df = published[published["method"].isin(methods)].copy()
    df["metric"] = [METRIC_KEYS.get((p, m)) for p, m in zip(df["protocol"], df["metric"], strict=True)]
    df["protocol"] = df["benchmark"].map(BENCHMARK_TO_PROTOCOL)
    df = df.dropna(subset=["metric", "protocol"])
    df["_order"] = df["method"].map(methods.index)
    df = df.sort_values("_order", kind="stable")
    return df[["method", "variant", "modality", "protocol", "metric", "value", "source"]].reset_index(drop=True)
