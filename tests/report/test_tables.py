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
    assert sorted(md) == sorted(b.name for b in BENCHMARKS)
    rows = _table_lines(md["ntu60"])
    header, body = rows[0], rows[1:]
    assert header.count(BEST) == 2  # xsub and xview
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
    measured = _table_lines(md["pkummd1"])[1]
    assert measured.split(" | ")[5:10] == ["30.0", "31.0", "32.0", "33.0", "34.0"]
    paper = next(r for r in _table_lines(md["pkummd1"]) if "dense fine-tune (TPAMI)" in r)
    assert paper.split(" | ")[8:10] == ["75.7", "74.9"]
    # a benchmark with no measured protocol still has its measured rows, all missing
    for empty in _table_lines(md["pkummd2"])[1:4]:
        assert set(empty.split(" | ")[1:-1]) == {"–"}
    # every table has both baseline rows
    for text in md.values():
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
    assert not any(k.startswith(("ntu60-xview/", "ntu60-xsub/detect")) for k in s)


def test_missing_stage_files_are_tolerated(tmp_path, entries):
    reports_dir = write_fake_reports(tmp_path, protocols=("pku2-xsub",))
    (reports_dir / "knn" / "pku2-xsub" / "metrics.json").unlink()
    reports = load_reports(Path(reports_dir))
    md = _markdown(fake_params(), reports, entries)
    measured = _table_lines(md["pkummd2"])[1]
    assert measured.split(" | ")[1] == "40.0" and measured.split(" | ")[4] == "–"
