"""The detect stage on tiny PKU-MMD I-like videos, with the arguments dvc.yaml gives it: every
detection protocol's metric keys (the dense protocol's under their old names), its proposal files
and timelines, byte-identical re-runs, and the protocols chosen by ``detection.protocols``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.hdf5 import write_detection_split, write_detection_video
from skelrep.errors import ParamsError
from skelrep.models.encoder_file import save_encoder
from skelrep.params import load_params
from skelrep.training.pretrain import build_model_for

from ..conftest import REPO_ROOT, TINY_SPLIT, write_tiny_h5
from ..dvc_stages import stage_args
from ..training.test_pretrain import tiny_usdrl

METRICS = ("mAP_a_tiou0.1", "mAP_a_tiou0.3", "mAP_a_tiou0.5", "mAP_action_theta0.5", "mAP_video_theta0.5",
           "ap_pooled_theta0.5")
REPORTS, OUT = Path("reports/detect/pku1-xsub"), Path("data/eval/pku1-xsub/proposals")


def _stage():
    spec = importlib.util.spec_from_file_location("stage_detect", REPO_ROOT / "stages" / "detect.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(protocols=("dense", "window", "dense_finetune")) -> dict:
    params = load_params(REPO_ROOT / "params.yaml")
    det = params["detection"]
    det.update({"protocols": list(protocols), "epochs": 2, "milestones": [1], "batch_size": 32, "train_stride": 8})
    det["window"].update({"epochs": 2, "draws": 2, "milestones": [1], "samples_per_video": 8, "batch_size": 8,
                          "test_stride": 4})
    det["dense_finetune"].update({"epochs": 1, "train_stride": 16, "batch_size": 8})
    params["mlflow"]["enabled"] = False
    return params


def _videos(h5: h5py.File, rng: np.random.Generator) -> None:
    """Six videos of 60-100 frames: background and two or three actions (classes 1-3) each."""
    ids = []
    for i in range(6):
        pattern = [(0, int(rng.integers(5, 15)))]
        for _ in range(int(rng.integers(2, 4))):
            pattern += [(int(rng.integers(1, 4)), int(rng.integers(12, 25))), (0, int(rng.integers(4, 12)))]
        labels = np.concatenate([np.full(n, c) for c, n in pattern])
        joint = rng.normal(scale=0.1, size=(3, labels.size, 25, 2)).astype(np.float32)
        joint[0] += labels[:, None, None]  # the action shows in the joints
        gt, start = [], 0
        for c, n in pattern:  # one_based_inclusive rows: label, start, end, confidence
            if c:
                gt.append([c, start + 1, start + n, 1])
            start += n
        vid = f"v{i:02d}"
        write_detection_video(h5, vid, joint, labels, np.array(gt))
        ids.append(vid)
    write_detection_split(h5, ids[:4], ids[4:])


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/processed").mkdir(parents=True)
    with h5py.File(tmp_path / "data/processed/pku1.h5", "w") as h5:
        _videos(h5, np.random.default_rng(0))
    shapes = SkeletonH5Dataset(write_tiny_h5(tmp_path / "shapes.h5", frames=16), TINY_SPLIT, "train")
    method = tiny_usdrl()
    for folder in ("pku1-xsub", "ntu60-xsub"):
        names = ("encoder.pt", "encoder_random.pt")
        for seed, name in enumerate(names):
            model = build_model_for(method, shapes, seed=seed + (2 if folder == "ntu60-xsub" else 0))
            save_encoder(tmp_path / "models" / folder / name, **method.encoder_payload(model))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params()))
    return tmp_path


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_protocol_with_its_keys_files_and_timelines(workspace, capsys):
    stage = _stage()
    args = stage_args("detect")
    assert args[args.index("--init-models") + 1] == "models/ntu60-xsub"
    stage.main(args)
    metrics = json.loads((workspace / REPORTS / "metrics.json").read_text())
    prefixes = ("detect", "detect/window", "detect/dense_finetune")  # and each one's random-init baseline
    assert set(metrics) == {f"{p}/{m}" for p in prefixes + tuple(p.replace("detect", "detect/random_init", 1)
                                                                 for p in prefixes) for m in METRICS}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())
    proposals = _files(workspace / OUT)
    assert sorted(proposals) == ["dense_finetune/v04.txt", "dense_finetune/v05.txt", "v04.txt", "v05.txt",
                                 "window/v04.txt", "window/v05.txt"]
    for text in proposals.values():  # label,start,end,confidence in the GT convention
        for line in text.decode().splitlines():
            label, start, end, score = line.split(",")
            assert 1 <= int(label) <= 51 and 1 <= int(start) <= int(end) and 0 <= float(score) <= 1
    timelines = sorted(_files(workspace / REPORTS / "timelines"))
    assert timelines == ["dense_finetune/v04.png", "dense_finetune/v05.png", "v04.png", "v05.png",
                         "window/v04.png", "window/v05.png"]
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("detect pku1-xsub: mAP_action ") and "; dense_finetune " in line and "; window " in line
    assert line.count("(random init ") == 3

    # `dvc repro -f`: the same bytes
    before = {**_files(workspace / OUT), "metrics.json": (workspace / REPORTS / "metrics.json").read_bytes()}
    stage.main(args)
    assert {**_files(workspace / OUT), "metrics.json": (workspace / REPORTS / "metrics.json").read_bytes()} == before


def test_the_protocols_params_choose_what_runs(workspace):
    stage = _stage()
    Path("params.yaml").write_text(yaml.safe_dump(_params(["window"])))
    stage.main(stage_args("detect"))
    metrics = json.loads((workspace / REPORTS / "metrics.json").read_text())
    assert set(metrics) == {f"detect/{v}window/{m}" for v in ("", "random_init/") for m in METRICS}
    params = _params(["window"])
    params["detection"]["random_init"] = False  # no baseline rows
    Path("params.yaml").write_text(yaml.safe_dump(params))
    stage.main(stage_args("detect"))
    metrics = json.loads((workspace / REPORTS / "metrics.json").read_text())
    assert set(metrics) == {f"detect/window/{m}" for m in METRICS}
    # the dense fine-tune needs the encoder it starts from: refused before any work
    Path("params.yaml").write_text(yaml.safe_dump(_params(["dense_finetune"])))
    args = stage_args("detect")
    i = args.index("--init-models")
    with pytest.raises(ParamsError, match="detection.protocols: dense_finetune needs"):
        stage.main(args[:i] + args[i + 2:])


def test_an_encoder_without_dense_features_is_refused_before_any_work(workspace, monkeypatch):
    stage = _stage()
    real = stage.load_frozen_encoder

    def pooled_only(path, device):  # as ISC's AGCN and HCN: a global feature only
        encoder = real(path, device)
        encoder.dense_dim = 0
        return encoder

    monkeypatch.setattr(stage, "load_frozen_encoder", pooled_only)
    for protocols in (["window", "dense"], ["window", "dense_finetune"]):
        Path("params.yaml").write_text(yaml.safe_dump(_params(protocols)))
        with pytest.raises(ParamsError, match=f"detection.protocols: {protocols[1]} needs an encoder with dense"):
            stage.main(stage_args("detect"))
        assert not (workspace / REPORTS).exists() and not (workspace / OUT).exists()


def test_the_head_only_variant_and_seg2clip_run(workspace):
    params = _params(["dense_finetune"])
    params["detection"]["dense_finetune"].update({"finetune": False, "train_clips": "seg2clip"})
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _stage().main(stage_args("detect"))
    metrics = json.loads((workspace / REPORTS / "metrics.json").read_text())
    assert set(metrics) == {f"detect/{v}dense_finetune/{m}" for v in ("", "random_init/") for m in METRICS}
