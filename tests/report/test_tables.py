"""Benchmark tables, results.csv and the summary metric, from fake stage outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from skelrep.report.collect import load_reports
from skelrep.report.published import load_published, table_entries
from skelrep.report.tables import BENCHMARKS, build_tables, render_markdown, results_long, summary, table_frame
from tests.report import fake_params, write_fake_reports

BEST = "best-on-test (official convention)"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return load_reports(write_fake_reports(tmp_path_factory.mktemp("report")))


@pytest.fixture(scope="module")
def entries():
    return table_entries(load_published())


def _markdown(params, reports, entries) -> dict[str, str]:
    tables = build_tables(params, reports, entries)
    return {b.name: render_markdown(b, rows, params, tuple(reports)) for b, rows in tables}


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def test_loads_only_the_protocols_present(reports):
    assert list(reports) == ["ntu60-xsub", "pku1-xsub"]
    assert reports["pku1-xsub"].evaluation()["detect/mAP_action_theta0.5"] == 33.0
    assert reports["pku1-xsub"].evaluation("random_init")["detect/mAP_action_theta0.5"] == 6.0
    assert reports["ntu60-xsub"].evaluation("random_init")["linear/top1_last"] == 10.0
    # each variant under the keys without its part, and no key of one variant in another
    evaluated = {v: reports["ntu60-xsub"].evaluation(v) for v in ("pretrained", "random_init", "handcrafted")}
    assert evaluated["handcrafted"] == {"linear/top1_last": 20.0, "linear/top5_last": 30.0,
                                        "linear/top1_best_on_test": 20.75, "linear/best_epoch": 15,
                                        "knn/top1": 5.0}
    assert set(evaluated["pretrained"]) - {"knn/k"} == set(evaluated["random_init"]) == set(evaluated["handcrafted"])
    assert reports["ntu60-xsub"].linear_history_handcrafted[-1]["test_top1"] == 20.0
    with pytest.raises(ValueError, match="variant"):
        reports["ntu60-xsub"].evaluation("random")


def test_tables_hold_measured_and_published_rows(reports, entries):
    md = _markdown(fake_params(), reports, entries)
    assert sorted(md) == sorted([*(b.name for b in BENCHMARKS), "transfer"])
    rows = _table_lines(md["ntu60"])
    header, body = rows[0], rows[1:]
    assert header.count(f"linear top-1, {BEST}") == 2  # xsub and xview
    assert body[0].startswith("| USDRL (DSTE, joint) — measured | 40.0 | 41.2 (ep 10) | 60.0 | 34.5 | – |")
    assert body[1].startswith("| Random-init baseline (same architecture) — measured | 10.0 | 10.5 (ep 5) |")
    assert body[2].startswith("| Hand-crafted baseline (joint coordinates, logistic regression) — measured "
                              "| 20.0 | 20.8 (ep 15) | 30.0 | 5.0 | – |")
    assert "Hand-crafted baseline: no learned features" in md["ntu60"]
    dste = next(r for r in body if r.startswith("| USDRL DSTE [J] (paper)"))
    # the paper number sits in the best-on-test column, not the last-epoch one
    assert dste.split(" | ")[1:3] == ["–", "85.2"]
    assert "USDRL AAAI Table 1" in dste
    assert {r.split(" | ")[0][2:].split(" ")[0] for r in body[3:]} == {"USDRL", "UmURL", "ISC"}
    assert "PCM3" not in md["ntu60"] and "MAMP" not in md["ntu60"]
    assert "No measured results for: ntu60-xview." in md["ntu60"]
    assert "Published numbers are best-on-test" in md["ntu60"]


def test_detection_columns_only_for_pku_mmd_one(reports, entries):
    md = _markdown(fake_params(), reports, entries)
    assert "mAP_action (θ=0.5)" in md["pkummd1"] and "mAP_action" not in md["ntu60"]
    lines = _table_lines(md["pkummd1"])
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[1:]}
    # the method's row holds recognition only; every detection value sits in its protocol's row
    assert rows["USDRL (DSTE, joint) — measured"][5:10] == ["–"] * 5
    assert rows["USDRL (DSTE, joint) — detection: frozen dense head — measured"][5:10] == [
        "30.0", "31.0", "32.0", "33.0", "34.0"]
    assert rows["Random-init baseline (same architecture) — detection: frozen dense head — measured"][5:10] == [
        "3.0", "4.0", "5.0", "6.0", "7.0"]
    assert rows["USDRL (DSTE, joint) — detection: window (W) — measured"][5:10] == [
        "20.0", "21.0", "22.0", "23.0", "24.0"]
    dense_ft = "USDRL (DSTE, joint) — detection: dense fine-tune (D, TPAMI) — measured"
    assert rows[dense_ft][5:10] == ["50.0", "51.0", "52.0", "53.0", "54.0"]
    assert set(rows[dense_ft][1:5]) == {"–"}  # no recognition value in a detection row
    # the published TPAMI figures: labelled with protocol D, right after the measured D row
    paper = "USDRL DSTE, dense fine-tune (TPAMI) [J] (paper) — detection: dense fine-tune (D, TPAMI)"
    assert rows[paper][8:10] == ["75.7", "74.9"]
    order = [line.split(" | ")[0][2:] for line in lines[1:]]
    assert order.index(paper) == order.index(dense_ft) + 1
    third = next(label for label in order if "third-party reproduction" in label)
    assert third.endswith("(published, third-party) — detection: dense fine-tune (D, TPAMI)")
    assert order.index(third) == order.index(dense_ft) + 2
    assert order[3:6] == ["USDRL (DSTE, joint) — detection: frozen dense head — measured",
                          "Random-init baseline (same architecture) — detection: frozen dense head — measured",
                          "USDRL (DSTE, joint) — detection: window (W) — measured"]
    # every detection value is in a row labelled with its protocol
    for label, cells in rows.items():
        if any(c not in ("–", "") for c in cells[5:10]):
            assert "— detection: " in label, label
    assert "dense fine-tune (D, TPAMI)**: the whole network fine-tuned" in md["pkummd1"]
    # a benchmark with no measured protocol still has its measured rows, all missing
    for empty in _table_lines(md["pkummd2"])[1:4]:
        assert set(empty.split(" | ")[1:-1]) == {"–"}
    # every benchmark table has both baseline rows (the transfer table: the random-init one)
    for name, text in md.items():
        if name == "transfer":
            continue
        labels = [line.split(" | ")[0][2:] for line in _table_lines(text)[1:4]]
        assert labels[1:] == ["Random-init baseline (same architecture) — measured",
                              "Hand-crafted baseline (joint coordinates, logistic regression) — measured"]


@pytest.mark.parametrize("source, banner", [("synthetic", True), ("official", False)])
def test_synthetic_banner_iff_synthetic_data(reports, entries, source, banner):
    md = _markdown(fake_params(source), reports, entries)
    for text in md.values():
        assert ("**Synthetic data" in text) == banner
        assert ("not comparable with the paper figures" in text) == banner


def test_table_frame_is_numeric_with_nan_for_missing(reports, entries):
    bench, rows = build_tables(fake_params(), reports, entries)[0]
    frame = table_frame(bench, rows)
    assert list(frame.columns)[0] == "Method" and list(frame.columns)[-1] == "Source"
    assert frame.iloc[0]["xsub: linear top-1, last epoch (primary)"] == 40.0
    assert frame.iloc[0][f"xview: linear top-1, {BEST}"] != frame.iloc[0][f"xview: linear top-1, {BEST}"]


def test_results_csv_long_form_and_deterministic(tmp_path, entries):
    texts = []
    for run in ("a", "b"):
        reports = load_reports(write_fake_reports(tmp_path / run))
        frame = results_long(build_tables(fake_params(), reports, entries))
        texts.append(frame.to_csv(index=False, lineterminator="\n"))
    assert texts[0] == texts[1]
    assert list(frame.columns) == ["benchmark", "protocol", "method", "variant", "metric", "value", "source"]
    keys = list(zip(frame["benchmark"], frame["protocol"], frame["method"], frame["variant"], frame["metric"],
                    frame["source"], strict=True))
    assert keys == sorted(keys)
    measured = frame[frame["source"] == "measured"]
    top1 = measured[(measured["protocol"] == "ntu60-xsub") & (measured["metric"] == "linear/top1_last")]
    assert dict(zip(top1["variant"], top1["value"], strict=True)) == {
        "DSTE, joint": 40.0, "random-init baseline (DSTE, joint)": 10.0, "joint coordinates, logistic regression": 20.0}
    assert set(top1["method"]) == {"USDRL", "Hand-crafted baseline"}
    paper = frame[(frame["variant"] == "DSTE") & (frame["protocol"] == "ntu60-xsub")]
    assert paper["source"].str.startswith("USDRL AAAI Table 1").all()
    assert set(frame["method"]) == {"USDRL", "UmURL", "ISC", "Hand-crafted baseline"}


def test_summary_has_headline_numbers(reports):
    s = summary(reports)
    assert s["ntu60-xsub/linear_top1_last"] == 40.0
    assert s["ntu60-xsub/baseline_linear_top1_last"] == 10.0
    assert s["ntu60-xsub/handcrafted_linear_top1_last"] == 20.0 and s["ntu60-xsub/handcrafted_knn_top1"] == 5.0
    assert s["ntu60-xsub/knn_top1"] == 34.5
    assert s["pku1-xsub/detect_mAP_action_theta0.5"] == 33.0
    assert s["pku1-xsub/detect_window_mAP_action_theta0.5"] == 23.0
    assert s["pku1-xsub/detect_dense_finetune_mAP_action_theta0.5"] == 53.0
    assert not any(k.startswith(("ntu60-xview/", "ntu60-xsub/detect")) for k in s)


def test_missing_stage_files_are_tolerated(tmp_path, entries):
    reports_dir = write_fake_reports(tmp_path, protocols=("pku2-xsub",))
    (reports_dir / "knn" / "pku2-xsub" / "metrics.json").unlink()
    reports = load_reports(Path(reports_dir))
    md = _markdown(fake_params(), reports, entries)
    measured = _table_lines(md["pkummd2"])[1]
    assert measured.split(" | ")[1] == "40.0" and measured.split(" | ")[4] == "–"


TRANSFERS = {"ntu60-xsub-to-pku2-xsub": ("ntu60-xsub", "pku2-xsub")}


def _fine_tuned(tmp_path, runs: int = 1):
    root = write_fake_reports(tmp_path, protocols=("ntu60-xsub", "pku2-xsub"), finetune=("ntu60-xsub",),
                              transfers=TRANSFERS, runs=runs)
    return load_reports(root, ("ntu60-xsub", "pku2-xsub"), {k: v[0] for k, v in TRANSFERS.items()})


def _columns(line: str) -> list[str]:
    return [c.strip() for c in line.strip("| ").split(" | ")]


def test_semi_supervised_and_fine_tune_columns_with_published_numbers(tmp_path, entries):
    md = _markdown(fake_params(), _fine_tuned(tmp_path, runs=3), entries)
    header, *body = (_columns(line) for line in _table_lines(md["ntu60"]) if not line.startswith("|---"))
    cells = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    measured = cells["USDRL (DSTE, joint) — measured"]
    baseline = cells["Random-init baseline (same architecture) — measured"]
    semi1 = "xsub: semi-supervised (1 % labels) top-1"
    # mean ± std over the three subset seeds; the random-init rows are the supervised-from-scratch baseline
    assert measured[f"{semi1}, last epoch"] == "20.0 ± 1.5" and baseline[f"{semi1}, last epoch"] == "10.0 ± 1.5"
    assert measured[f"{semi1}, {BEST}"] == "21.0 ± 0.5"
    assert measured["xsub: fine-tune (100 % labels) top-1, last epoch"] == "45.0"
    assert measured[f"xsub: fine-tune (100 % labels) top-1, {BEST}"] == "46.0 (ep 20)"
    # ISC's published 20 % (best-on-test) gets its own column, beside 1 % and 10 % that are always there
    isc = cells["ISC seq+graph pretraining [J] (paper)"]
    assert isc["xsub: semi-supervised (20 % labels) top-1, last epoch"] == "–"
    assert isc[f"xsub: semi-supervised (20 % labels) top-1, {BEST}"] == "70.8"
    assert cells["ISC third-party reproduction [J] (published, third-party)"][
        f"xsub: semi-supervised (20 % labels) top-1, {BEST}"] == "63.4"
    assert "20 % labels" not in md["pkummd2"] and "1 % labels" in md["pkummd2"]
    assert "Semi-supervised: encoder and a linear head fine-tuned end to end" in md["ntu60"]


def test_transfer_columns_and_the_transfer_table(tmp_path, entries):
    md = _markdown(fake_params(), _fine_tuned(tmp_path), entries)
    for name, prefix in (("pkummd2", "xsub, transfer from ntu60-xsub: "), ("transfer", "ntu60-xsub → pku2-xsub: ")):
        header, *body = (_columns(line) for line in _table_lines(md[name]) if not line.startswith("|---"))
        cells = {row[0]: dict(zip(header, row, strict=True)) for row in body}
        assert cells["USDRL (DSTE, joint) — measured"][f"{prefix}linear top-1, last epoch"] == "30.0"
        assert cells["USDRL (DSTE, joint) — measured"][f"{prefix}fine-tune top-1, last epoch"] == "34.0"
        assert cells["Random-init baseline (same architecture) — measured"][
            f"{prefix}fine-tune top-1, {BEST}"] == "17.5 (ep 15)"
        # UmURL's published NTU-60 -> PKU-MMD II number is a fine-tune, best-on-test
        umurl = cells["UmURL as cited [unstated] (published, third-party)"]
        assert umurl[f"{prefix}fine-tune top-1, {BEST}"] == "59.7" and umurl[f"{prefix}linear top-1, {BEST}"] == "–"
    assert "Hand-crafted" not in md["transfer"]  # no encoder to transfer
    assert "transfer" not in md["ntu60"].split("\n\n- ")[0]  # no transfer into NTU-60


def test_results_csv_has_each_value_once_and_the_summary_the_primary_numbers(tmp_path, entries):
    reports = _fine_tuned(tmp_path)
    frame = results_long(build_tables(fake_params(), reports, entries))
    keys = list(zip(frame["protocol"], frame["method"], frame["variant"], frame["metric"], frame["source"],
                    strict=True))
    assert len(keys) == len(set(keys))  # one row per (protocol, method, metric) and source
    transfer = frame[frame["metric"].str.startswith("transfer/")]
    assert set(transfer["benchmark"]) == {"transfer"} and set(transfer["protocol"]) == {"ntu60-xsub"}
    assert len(transfer[transfer["source"] == "measured"]) == 16  # 2 encoders x 2 evaluations x 4 metrics
    semi = frame[(frame["metric"] == "semi/1pct/top1_last_mean") & (frame["source"] == "measured")]
    assert dict(zip(semi["variant"], semi["value"], strict=True)) == {
        "DSTE, joint": 20.0, "random-init baseline (DSTE, joint)": 10.0}
    s = summary(reports)
    assert s["ntu60-xsub/semi_1pct_top1_last_mean"] == 20.0
    assert s["ntu60-xsub/baseline_semi_10pct_top1_last_mean"] == 15.0
    assert s["ntu60-xsub/finetune_top1_last"] == 45.0 and s["ntu60-xsub/baseline_finetune_top1_last"] == 22.5
    assert s["ntu60-xsub/transfer_pku2-xsub_finetune_top1_last"] == 34.0
    assert s["ntu60-xsub/baseline_transfer_pku2-xsub_linear_top1_last"] == 15.0
    assert not any(k.startswith("pku2-xsub/semi") for k in s)
