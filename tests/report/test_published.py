"""Published reference numbers: packaged CSV, benchmark mapping, table selection."""

from __future__ import annotations

from skelrep.catalog import PROTOCOLS
from skelrep.report.published import (
    BENCHMARK_TO_PROTOCOL,
    benchmark_protocols,
    load_published,
    metric_key,
    table_entries,
    table_methods,
)


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
                                      "detect/mAP_a_tiou0.5", "detect/mAP_a_tiou0.7",
                                      "semi/20pct/top1_best_on_test_mean", "finetune/top1_best_on_test",
                                      "transfer/pku2-xsub/finetune/top1_best_on_test"}
    # methods come out in table order
    order = [table_methods().index(m) for m in entries["method"]]
    assert order == sorted(order)


def test_published_linear_numbers_are_best_on_test():
    entries = table_entries(load_published())
    dste = entries[(entries["method"] == "USDRL") & (entries["variant"] == "DSTE")
                   & (entries["protocol"] == "ntu60-xsub")]
    assert dste[["metric", "value"]].values.tolist() == [["linear/top1_best_on_test", 85.2]]
    # ablation rows never reach the tables
    assert not entries["value"].isin([67.2]).any()


def test_semi_supervised_and_transfer_numbers_are_best_on_test_with_their_protocols():
    entries = table_entries(load_published())
    rows = {(m, v, p, k): x for m, v, p, k, x in entries[["method", "variant", "protocol", "metric", "value"]].values
            if not k.startswith(("linear/", "knn/", "detect/"))}
    assert rows == {
        # ISC's 20 % labels on NTU-60 xsub (and its third-party reproduction), UmURL's NTU-60 -> PKU-MMD II
        ("ISC", "seq+graph pretraining", "ntu60-xsub", "semi/20pct/top1_best_on_test_mean"): 70.8,
        ("ISC", "third-party reproduction", "ntu60-xsub", "semi/20pct/top1_best_on_test_mean"): 63.4,
        ("UmURL", "as cited", "ntu60-xsub", "transfer/pku2-xsub/finetune/top1_best_on_test"): 59.7}
    # the transfer's source is the source dataset's cross-subject protocol; unknown benchmarks map to nothing
    assert benchmark_protocols("ntu120->pkummd2_xsub") == ("ntu120-xsub", "pku2-xsub")
    assert benchmark_protocols("ntu60->pkummd9_xsub") == (None, None)
    assert benchmark_protocols("pkummd_phase_unstated") == (None, None)
    assert metric_key("semi", "top1_acc_labels1pct") == "semi/1pct/top1_best_on_test_mean"
    assert metric_key("semi", "top1_acc") is None
