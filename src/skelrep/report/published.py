"""Published reference numbers (``published_results.csv``, shipped with the package).

The CSV is a copy of the project's reference list of paper figures. Only the methods that
``skelrep`` implements go into the benchmark tables (each registered method's
``MethodInfo.published_as``, in registry order), and only the metrics those tables show
(linear top-1, KNN-1, PKU-MMD I detection, semi-supervised top-1 per label fraction, full
fine-tune top-1, and the transfer to PKU-MMD II).
"""

from __future__ import annotations

import re
from importlib import resources

import pandas as pd

from ..catalog import DATASETS, PROTOCOLS, published_key
from ..methods import METHODS

# CSV benchmark key -> skelrep protocol (skelrep.catalog names both)
BENCHMARK_TO_PROTOCOL = {published_key(protocol): protocol for protocol in PROTOCOLS}
# transfer rows name ``<source dataset>-><target benchmark>`` (``ntu60->pkummd2_xsub``); skelrep
# transfers the source dataset's cross-subject encoder (evaluation.md §5): <source>-xsub
TRANSFER_SOURCE_SPLIT = "xsub"


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
    ("finetune", "top1_acc"): "finetune/top1_best_on_test",
}
# a published detection row's protocol (skelrep.evaluation.sections.DETECTION_PROTOCOLS), from a
# word of its variant: the USDRL TPAMI figures (and their third-party reproduction) come from the
# dense fine-tune, protocol D (evaluation.md §6.5)
DETECTION_PROTOCOL_OF_VARIANT = (("TPAMI", "dense_finetune"),)


def published_detection_protocol(variant: str) -> str | None:
    """The detection protocol a published row's ``variant`` ran, None when it does not say."""
    return next((protocol for word, protocol in DETECTION_PROTOCOL_OF_VARIANT if word in variant), None)


SEMI_METRIC = re.compile(r"top1_acc_labels(\d+(?:\.\d+)?)pct")  # -> semi/<f>pct/top1_best_on_test_mean


def metric_key(protocol: str, metric: str, target: str | None = None) -> str | None:
    """The skelrep metric key of a CSV (protocol column, metric) pair; ``target``: the transfer's
    target protocol. None: a metric no table shows."""
    if protocol == "semi":
        match = SEMI_METRIC.fullmatch(metric)
        return f"semi/{match.group(1)}pct/top1_best_on_test_mean" if match else None
    if protocol == "transfer":
        return f"transfer/{target}/finetune/top1_best_on_test" if target and metric == "top1_acc" else None
    return METRIC_KEYS.get((protocol, metric))


def benchmark_protocols(benchmark: str) -> tuple[str | None, str | None]:
    """``(protocol, transfer target)`` of a CSV benchmark key: ``ntu60_xsub`` -> (ntu60-xsub,
    None); ``ntu60->pkummd2_xsub`` -> (ntu60-xsub, pku2-xsub); (None, None) when skelrep has no
    such protocol."""
    if "->" not in benchmark:
        return BENCHMARK_TO_PROTOCOL.get(benchmark), None
    source, target = benchmark.split("->", 1)
    datasets = [d.name for d in DATASETS.values() if d.table == source]
    protocol = f"{datasets[0]}-{TRANSFER_SOURCE_SPLIT}" if datasets else None
    target_protocol = BENCHMARK_TO_PROTOCOL.get(target)
    if protocol not in PROTOCOLS or target_protocol is None:
        return None, None
    return protocol, target_protocol


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
    ends = [benchmark_protocols(b) for b in df["benchmark"]]
    df["metric"] = [metric_key(p, m, target) for p, m, (_, target) in zip(df["protocol"], df["metric"], ends,
                                                                          strict=True)]
    df["protocol"] = [protocol for protocol, _ in ends]
    df = df.dropna(subset=["metric", "protocol"])
    df["_order"] = df["method"].map(methods.index)
    df = df.sort_values("_order", kind="stable")
    return df[["method", "variant", "modality", "protocol", "metric", "value", "source"]].reset_index(drop=True)
