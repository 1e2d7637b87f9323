"""Published reference numbers: packaged CSV, benchmark mapping, table selection."""

from __future__ import annotations

from skelrep.catalog import PROTOCOLS
from skelrep.report.published import BENCHMARK_TO_PROTOCOL, load_published, table_entries, table_methods


def test_packaged_csv_has_the_reference_columns():
    df = load_published()
    assert list(df.columns) == ["method", "variant", "modality", "benchmark", "protocol", "metric", "value",
                                "source"]
    assert len(df) > 200


def test_every_protocol_has_a_benchmark_key():
    assert sorted(BENCHMARK_TO_PROTOCOL.values()) == sorted(PROTOCOLS)


def test_table_entries_keep_only_implemented_methods_and_table_metrics():
    entries = table_entries(load_published())
    assert table_methods() == ("USDRL", "UmURL", "ISC")  # the registry's published names, in its order
    assert set(entries["method"]) == set(table_methods())
    assert set(entries["protocol"]) <= set(PROTOCOLS)
    assert set(entries["metric"]) <= {"linear/top1_best_on_test", "knn/top1", "detect/mAP_action_theta0.5",
                                      "detect/mAP_video_theta0.5", "detect/mAP_a_tiou0.1", "detect/mAP_a_tiou0.3",
                                      "detect/mAP_a_tiou0.5", "detect/mAP_a_tiou0.7"}
    # methods come out in table order
    order = [table_methods().index(m) for m in entries["method"]]
    assert order == sorted(order)


def test_published_linear_numbers_are_best_on_test():
    entries = table_entries(load_published())
    dste = entries[(entries["method"] == "USDRL") & (entries["variant"] == "DSTE")
                   & (entries["protocol"] == "ntu60-xsub")]
    assert dste[["metric", "value"]].values.tolist() == [["linear/top1_best_on_test", 85.2]]
    # semi-supervised, transfer and ablation rows never reach the tables
    assert not entries["value"].isin([70.8, 63.4, 67.2]).any()
