"""One MLflow run per execution of a configuration (``tracking.choose_run``), without MLflow."""

from __future__ import annotations

from skelrep.tracking.mlflow_run import RunChoice, RunIdentity, choose_run, runs_table_url, runs_table_view

DONE = "done"


def test_the_first_stage_of_an_execution_starts_a_run():
    assert choose_run([], "pretrain") == RunChoice(None)


def test_later_stages_of_the_execution_join_it():
    runs = [("r1", {"stage.pretrain": DONE})]
    assert choose_run(runs, "linear") == RunChoice("r1")


def test_a_stage_that_ran_before_starts_a_new_run_linked_to_the_last():
    runs = [("r2", {"stage.pretrain": DONE}), ("r1", {"stage.pretrain": DONE, "stage.linear": DONE})]
    assert choose_run(runs, "pretrain") == RunChoice(None, rerun_of="r2")
    assert choose_run(runs, "linear") == RunChoice("r2")  # the second execution goes on in r2


def test_an_interrupted_stage_resumes_into_its_run():
    runs = [("r1", {"stage.linear": DONE})]  # pretrain started in r1 but never finished
    assert choose_run(runs, "pretrain") == RunChoice("r1")


def test_experiments_keep_to_their_own_runs():
    runs = [("e1", {"dvc.exp_name": "wised-hake"}), ("w1", {"stage.pretrain": DONE})]
    assert choose_run(runs, "linear", exp_name="wised-hake") == RunChoice("e1")
    assert choose_run(runs, "linear") == RunChoice("w1")
    assert choose_run(runs, "linear", exp_name="other-exp") == RunChoice(None, rerun_of="e1")


def test_the_report_annotates_the_latest_run():
    runs = [("r2", {"stage.report": DONE, "stage.linear": DONE}), ("r1", {})]
    assert choose_run(runs, "report", annotate=True) == RunChoice("r2")
    assert choose_run(runs, "report", exp_name="x", annotate=True) == RunChoice("r2")  # none of its own
    assert choose_run([], "report", annotate=True) == RunChoice(None)


def test_the_runs_table_view_lists_the_identity_columns():
    identity = RunIdentity("p", "k", {}, "n", metric_columns=("linear/top1_last",), tag_columns=("changes",))
    assert runs_table_view(identity) == {"selectedColumns": ["tags.`changes`", "metrics.`linear/top1_last`"],
                                         "orderByKey": "attributes.start_time", "orderByAsc": False}
    assert runs_table_url("3") == ("http://127.0.0.1:5000/#/experiments/3/runs?viewStateShareKey=skelrep"
                                   "&workflowType=machine_learning")
