"""Helpers for the report tests: small fake stage outputs and params."""

from __future__ import annotations

import json
from pathlib import Path

DETECT_KEYS = ("mAP_a_tiou0.1", "mAP_a_tiou0.3", "mAP_a_tiou0.5", "mAP_action_theta0.5",
               "mAP_video_theta0.5", "ap_pooled_theta0.5")


def fake_params(source: str = "synthetic", mlflow: bool = True) -> dict:
    return {
        "method": "usdrl",
        "usdrl": {"encoder": {"arch": "dste"}, "train": {"modality": "joint"}},
        "data": {d: {"source": source} for d in ("ntu60", "ntu120", "pku1", "pku2")},
        "mlflow": {"enabled": mlflow},
    }


def stage_params(mlflow: bool = True) -> dict:
    """The committed params.yaml (what fake_params describes: USDRL DSTE joint, synthetic data)
    with ``mlflow.enabled`` set: a file the report stage accepts, as it validates every section."""
    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text(encoding="utf-8"))
    fake = fake_params(mlflow=mlflow)
    assert params["method"] == fake["method"] and all(
        params[fake["method"]][k][name] == value for k, sub in fake["usdrl"].items() for name, value in sub.items())
    params["mlflow"] = fake["mlflow"]
    return params


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def linear_metrics(base: float) -> dict:
    return {"linear/top1_last": base, "linear/top5_last": base + 20.0,
            "linear/top1_best_on_test": base + 1.25, "linear/best_epoch": 10,
            "linear/random_init/top1_last": base / 4, "linear/random_init/top5_last": base / 2,
            "linear/random_init/top1_best_on_test": base / 4 + 0.5, "linear/random_init/best_epoch": 5,
            "linear/handcrafted/top1_last": base / 2, "linear/handcrafted/top5_last": base / 2 + 10.0,
            "linear/handcrafted/top1_best_on_test": base / 2 + 0.75, "linear/handcrafted/best_epoch": 15}


def finetune_metrics(base: float, runs: int = 1) -> dict:
    """A finetune@ stage's metrics.json: semi 1 % and 10 % (``runs`` subset seeds) and the full
    fine-tune, for the pretrained encoder and the random-init baseline."""
    out = {}
    for variant, scale in (("", 1.0), ("random_init/", 0.5)):
        for j, fraction in enumerate(("1pct", "10pct")):
            semi = f"semi/{variant}{fraction}"
            value = scale * (base / 2 + 10.0 * j)
            out.update({f"{semi}/top1_last_mean": value, f"{semi}/top1_last_std": 1.5 * (runs > 1),
                        f"{semi}/top1_best_on_test_mean": value + 1.0,
                        f"{semi}/top1_best_on_test_std": 0.5 * (runs > 1),
                        f"{semi}/top5_last_mean": value + 20.0, f"{semi}/labelled": 60.0 + 12.0 * j,
                        f"{semi}/runs": float(runs)})
        full = f"finetune/{variant}".rstrip("/")
        out.update({f"{full}/top1_last": scale * (base + 5.0), f"{full}/top5_last": scale * (base + 25.0),
                    f"{full}/top1_best_on_test": scale * (base + 6.0), f"{full}/best_epoch": 20})
    return out


def transfer_metrics(target: str, base: float) -> dict:
    """A transfer@ stage's metrics.json (linear probe and fine-tune on ``target``, both encoders)."""
    out = {}
    for prefix, scale in ((f"transfer/{target}", 1.0), (f"transfer/random_init/{target}", 0.5)):
        for kind, offset in (("linear", 0.0), ("finetune", 4.0)):
            out.update({f"{prefix}/{kind}/top1_last": scale * (base + offset),
                        f"{prefix}/{kind}/top5_last": scale * (base + offset + 20.0),
                        f"{prefix}/{kind}/top1_best_on_test": scale * (base + offset + 1.0),
                        f"{prefix}/{kind}/best_epoch": 15})
    return out


def write_fake_reports(root: Path, protocols=("ntu60-xsub", "pku1-xsub"), epochs: int = 4,
                       finetune: tuple[str, ...] = (), transfers: dict | None = None, runs: int = 1) -> Path:
    """Fake outputs of pretrain/linear/knn (and detect for pku1-xsub) under ``root/reports``; with
    ``finetune`` (protocols) and ``transfers`` ({name: (source, target)}), those stages' too."""
    reports = root / "reports"
    for i, protocol in enumerate(protocols):
        base = 40.0 + 7.123456789 * i
        stats = [{"epoch": e, "lr": 0.001, "loss": 10.0 / e + i, "loss/sim": 5.0 / e, "loss/vac": 2.0 / e,
                  "loss/xcorr": 1.0 / e} for e in range(1, epochs + 1)]
        _write_jsonl(reports / "pretrain" / protocol / "stats.jsonl", stats)
        _write_json(reports / "pretrain" / protocol / "metrics.json", {
            "pretrain/loss_last": stats[-1]["loss"], "pretrain/sim_last": stats[-1]["loss/sim"],
            "pretrain/vac_last": stats[-1]["loss/vac"], "pretrain/xcorr_last": stats[-1]["loss/xcorr"],
            "pretrain/epochs": epochs})
        _write_json(reports / "linear" / protocol / "metrics.json", linear_metrics(base))
        for name, scale in (("history.jsonl", 1.0), ("history_random_init.jsonl", 0.25),
                            ("history_handcrafted.jsonl", 0.5)):
            rows = []
            for e in range(1, epochs + 1):
                row = {"epoch": e, "lr": 0.1, "train_loss": 2.0 / e, "train_top1": 10.0 * e}
                if e % 2 == 0:
                    row.update(test_top1=scale * (base - epochs + e), test_top5=scale * (base + 20.0))
                rows.append(row)
            _write_jsonl(reports / "linear" / protocol / name, rows)
        preds = "sample,actual,predicted\n" + "".join(f"s{j:03d},{j % 3},{(j + (j % 4 == 0)) % 3}\n" for j in range(30))
        (reports / "linear" / protocol / "predictions.csv").write_text(preds)
        _write_json(reports / "knn" / protocol / "metrics.json",
                    {"knn/top1": base - 5.5, "knn/random_init/top1": base / 5, "knn/handcrafted/top1": base / 8,
                     "knn/k": 1})
        if protocol == "pku1-xsub":
            detect = {f"detect/{k}": 30.0 + j for j, k in enumerate(DETECT_KEYS)}
            detect.update({f"detect/random_init/{k}": 3.0 + j for j, k in enumerate(DETECT_KEYS)})
            detect.update({f"detect/window/{k}": 20.0 + j for j, k in enumerate(DETECT_KEYS)})
            detect.update({f"detect/dense_finetune/{k}": 50.0 + j for j, k in enumerate(DETECT_KEYS)})
            _write_json(reports / "detect" / protocol / "metrics.json", detect)
        if protocol in finetune:
            _write_json(reports / "finetune" / protocol / "metrics.json", finetune_metrics(base, runs))
    for i, (name, (_, target)) in enumerate((transfers or {}).items()):
        _write_json(reports / "finetune" / "transfer" / name / "metrics.json", transfer_metrics(target, 30.0 + i))
    return reports
