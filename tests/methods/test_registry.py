"""A method is one folder plus one registry line.

The toy method of docs/adding_a_method.md, written into a temporary folder from the doc's own
code blocks (found as ``skelrep.methods.toy``: the package path is extended to that folder, so
the source tree stays untouched) and registered by the doc's registry line (one ``METHODS``
entry; no other module is patched), goes through every generic path: params validation, the names the report and MLflow
use, the paper profile, model building under portable_init, the pretrain, features, KNN and
linear stages, and the encoder file. The registry itself (what the three built-in methods
declare) is checked too.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
import yaml

import skelrep.methods
from skelrep.config import comparison_keys, configuration, identifying_params, method_label, run_identity
from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.layout import load_layout
from skelrep.errors import ParamsError
from skelrep.evaluation.feature_file import load_feature_file
from skelrep.evaluation.features import crop_windows, extract_features, extract_window_features, load_frozen_encoder
from skelrep.evaluation.handcrafted import extract_handcrafted
from skelrep.evaluation.knn import knn_top1
from skelrep.evaluation.linear import standardize_features, train_linear_probe
from skelrep.methods import METHODS, Method, MethodInfo, build_encoder, get_method
from skelrep.methods.base import DownstreamCrops, DownstreamInput, resolve
from skelrep.models.encoder_file import load_encoder_file, save_encoder
from skelrep.params import load_params
from skelrep.profiles import apply_assignments, profile_assignments, set_arguments
from skelrep.report.published import table_methods
from skelrep.training.pretrain import build_model_for
from skelrep.validation import allowed_sections, params_errors

from ..conftest import REPO_ROOT, TINY_SPLIT, write_tiny_h5
from ..dvc_stages import stage_args

DOC = REPO_ROOT / "docs" / "adding_a_method.md"
FOLDER = "src/skelrep/methods/toy/"
PROTOCOL = "ntu60-xsub"


def doc_walkthrough() -> SimpleNamespace:
    """The doc's code blocks: the toy folder's files, its registry entry, its params section."""
    files, entry, section = {}, None, None
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        first = body.splitlines()[0]
        if lang == "python" and first.startswith(f"# {FOLDER}"):
            files[first[len(f"# {FOLDER}"):]] = body
        elif lang == "python" and first == "# src/skelrep/methods/__init__.py":
            entry = re.search(r'^\s*"toy": "([^"]+)",$', body, re.M).group(1)
        elif lang == "yaml":
            section = yaml.safe_load(body)["toy"]
    assert set(files) == {"__init__.py", "defaults.py", "schema.py", "method.py"} and entry and section
    return SimpleNamespace(files=files, entry=entry, section=section)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy folder, found as ``skelrep.methods.toy`` and registered by its one line."""
    walk = doc_walkthrough()
    root = tmp_path_factory.mktemp("methods")
    (root / "toy").mkdir()
    for name, body in walk.files.items():
        (root / "toy" / name).write_text(body, encoding="utf-8")
    assert "toy" not in METHODS
    with pytest.MonkeyPatch.context() as mp:
        # the folder lies outside the source tree, so the package path is extended to find it
        mp.setattr(skelrep.methods, "__path__", [*skelrep.methods.__path__, str(root)])
        mp.setitem(METHODS, "toy", resolve(walk.entry))  # the registry line
        yield walk
    for name in [n for n in sys.modules if n == "skelrep.methods.toy" or n.startswith("skelrep.methods.toy.")]:
        del sys.modules[name]


def toy_params(section: dict) -> dict:
    params = load_params(REPO_ROOT / "params.yaml")
    params["method"] = "toy"
    params["toy"] = json.loads(json.dumps(section))
    params["mlflow"]["enabled"] = False
    params["features"]["device"] = "cpu"
    params["linear"].update(epochs=3, milestones=[], batch_size=8, eval_every=1, device="cpu")
    return params


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the registry


def test_the_registry_declares_each_method_once():
    assert list(METHODS) == ["usdrl", "umurl", "isc"]
    for name, info in METHODS.items():
        impl = info.load()
        assert issubclass(impl, info) and issubclass(impl, Method) and impl.name == name
        assert impl.label == info.label and impl.downstream_crop == info.downstream_crop
    assert [m.label for m in METHODS.values()] == ["USDRL", "UmURL", "ISC"]
    # the official downstream inputs (evaluation.md section 2): train / test (test = KNN's too)
    assert {n: (m.downstream_crop.train.describe(), m.downstream_crop.test.describe())
            for n, m in METHODS.items()} == {
        "usdrl": ("whole", "whole"), "umurl": ("whole", "whole"),
        "isc": ("random U(0.5, 1.0), min 64 frames", "centre 95 %")}
    assert METHODS["isc"].downstream_crop == DownstreamCrops(
        train=DownstreamInput("random", scale=(0.5, 1.0), min_frames=64), test=DownstreamInput("center", 0.95))


def test_looking_methods_up_loads_no_torch():
    code = ("import sys; from skelrep.methods import METHODS; from skelrep.profiles import profile_assignments; "
            "from skelrep.params import load_params; from skelrep.config import configuration; "
            "[profile_assignments('paper', load_params('params.yaml'), m) for m in METHODS]; "
            "print([m.label for m in METHODS.values()], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO_ROOT)
    assert out.stdout.strip() == "['USDRL', 'UmURL', 'ISC'] False"


def test_a_method_validates_its_section_with_its_schema_alone():
    """``validate_section`` (the torch-free schema.py that params validation runs) and the
    ``Method`` constructor accept the same sections and reject them with the same message."""
    params = load_params(REPO_ROOT / "params.yaml")
    for name, info in METHODS.items():
        assert info.schema == f"skelrep.methods.{name}.schema:validate_section"
        assert info.validate_section(params[name])["train"]["seed"] == params[name]["train"]["seed"]
        info.load()(params[name])
        crop = {**params[name]["aug"], "crop_scale": [0.9, 0.5]}  # check_aug: low > high
        for bad in ({**params[name], "trian": 1}, {**params[name], "aug": crop}):
            messages = []
            for validate in (info.validate_section, info.load()):
                with pytest.raises(ParamsError) as exc:
                    validate(bad)
                messages.append(str(exc.value))
            assert messages[0] == messages[1] and messages[0].startswith(f"params.yaml: {name}.")


def test_the_paper_values_live_once_in_defaults():
    """The model config defaults are the paper values of the method's defaults.py."""
    from skelrep.methods.isc.moco import GruConfig, IscConfig, MocoConfig
    from skelrep.methods.umurl.model import UmURLEncoderConfig, UmURLProjConfig
    from skelrep.methods.usdrl.model import EncoderConfig, ProjConfig

    params = load_params(REPO_ROOT / "params.yaml")
    paper = {k: v for m in ("usdrl", "umurl", "isc") for k, v in profile_assignments("paper", params, m)}
    assert (EncoderConfig().hidden, EncoderConfig().num_layers, EncoderConfig().frames, ProjConfig().cp) == (
        paper["usdrl.encoder.hidden"], paper["usdrl.encoder.num_layers"], paper["usdrl.encoder.frames"],
        paper["usdrl.proj.cp"])
    assert (UmURLEncoderConfig().hidden, UmURLEncoderConfig().frames, list(UmURLProjConfig().dims),
            UmURLProjConfig().bn) == (paper["umurl.encoder.hidden"], paper["umurl.encoder.frames"],
                                      paper["umurl.proj.dims"], paper["umurl.proj.bn"])
    assert (GruConfig().hidden, GruConfig().layers, MocoConfig().k, MocoConfig().m) == (
        paper["isc.gru.hidden"], paper["isc.gru.layers"], paper["isc.moco.k"], paper["isc.moco.m"])
    isc = IscConfig()
    assert (isc.frames, isc.agcn.base_channels, isc.hcn.width) == (
        paper["isc.frames"], paper["isc.agcn.base_channels"], paper["isc.hcn.width"])


# ---------------------------------------------------------------- a new method


def test_validation_names_and_profile_know_the_new_method(toy):
    params = toy_params(toy.section)
    assert params_errors(params) == []
    assert "toy" in allowed_sections()
    params["toy"]["hiden"] = 1
    assert [str(e) for e in params_errors(params)] == [
        "params.yaml: toy.hiden: unknown key; allowed keys: hidden, frames, noise, train"]
    params = toy_params(toy.section)
    params["method"] = "simclr"
    assert "allowed: usdrl, umurl, isc, toy" in str(params_errors(params)[0])

    params = toy_params(toy.section)
    assert configuration(params) == ("Toy", "") and method_label("toy") == "Toy"
    identity = run_identity(params, PROTOCOL)
    assert identity.tags["method"] == "toy" and identity.run_name == "toy"  # no stream, no changes
    assert "modality" not in identity.tags
    assert identifying_params(params, PROTOCOL) == {"method": "toy", "data.ntu60.source": "synthetic"}
    assert set(comparison_keys(params, PROTOCOL)) == {"skelrep.config_key", "skelrep.stream_key"}
    assert table_methods() == ("USDRL", "UmURL", "ISC")  # no published rows

    paper = profile_assignments("paper", params, "toy")
    assert {k: v for k, v in paper if k.startswith("toy.")} == {
        "toy.hidden": 256, "toy.frames": 64, "toy.train.epochs": 100}
    assert "toy.hidden=256" in set_arguments(params, paper)
    assert get_method("toy", apply_assignments(params, paper)).cfg["hidden"] == 256


def test_model_building_and_the_encoder_file(toy, tmp_path):
    method = get_method("toy", toy_params(toy.section))
    assert isinstance(method, METHODS["toy"]) and isinstance(method, MethodInfo)
    dataset = SimpleNamespace(sample_shape=(3, 24, 25, 2), layout=load_layout("ntu25"))
    model = build_model_for(method, dataset, seed=0)  # under portable_init
    again = build_model_for(method, dataset, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))

    g = torch.Generator().manual_seed(0)
    x, num_frames = torch.randn(4, 3, 24, 25, 2, generator=g), torch.tensor([24, 20, 18, 24])
    terms = method.training_loss(model, x, num_frames, torch.Generator().manual_seed(1), None)
    terms["total"].backward()
    assert torch.isfinite(terms["total"]) and model.backbone.embed.weight.grad is not None

    save_encoder(tmp_path / "encoder.pt", **method.encoder_payload(model))
    encoder = build_encoder(load_encoder_file(tmp_path / "encoder.pt"))
    assert encoder.method == "toy" and type(encoder) is METHODS["toy"].load().encoder
    clip = torch.randn(2, 3, 16, 25, 2, generator=g)
    with torch.no_grad():
        assert encoder.features(clip).shape == (2, 16) and encoder.dense_features(clip).shape == (2, 16, 16)
        torch.testing.assert_close(encoder.features(clip), model.backbone.features(clip))


def test_the_stages_run_the_new_method(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "processed").mkdir(parents=True)
    data = write_tiny_h5(tmp_path / "data" / "processed" / "ntu60.h5", n_train=16, n_test=8, frames=24)
    with h5py.File(data, "a") as h5:
        h5.attrs["num_classes"] = 4  # what preprocessing records; the feature file carries it
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(toy_params(toy.section)))

    def args(stage):  # as dvc.yaml runs it
        return stage_args(f"{stage}@{PROTOCOL}")

    _stage("pretrain").main(args("pretrain"))
    stats = [json.loads(line) for line in Path(f"reports/pretrain/{PROTOCOL}/stats.jsonl").read_text().splitlines()]
    assert len(stats) == toy.section["train"]["epochs"] and all(np.isfinite(s["loss"]) for s in stats)
    assert load_encoder_file(f"models/{PROTOCOL}/encoder.pt")["method"] == "toy"

    _stage("features").main(args("features"))  # features.*_crop: auto -> the toy's own downstream inputs
    encoder = load_frozen_encoder(Path(f"models/{PROTOCOL}/encoder.pt"), torch.device("cpu"))
    train_set = SkeletonH5Dataset(data, TINY_SPLIT, "train")
    expected = extract_features(encoder, train_set, crop="center", ratio=0.9)  # the test input, KNN's gallery
    features = load_feature_file(f"data/features/{PROTOCOL}/pretrained.npz")
    np.testing.assert_array_equal(features["train_x"], expected)
    assert features["train_x"].shape == (16, toy.section["hidden"])
    # the probe's train input: K random crops U(0.5, 1), at least 16 frames, seeded (features.seed)
    k = toy_params(toy.section)["features"]["random_crops"]
    starts, lengths = crop_windows(METHODS["toy"].downstream_crop.train, train_set.num_frame, k, seed=0)
    np.testing.assert_array_equal(features["train_crop_windows"], np.stack([starts, lengths], -1))
    n = train_set.num_frame
    assert ((lengths >= np.minimum(n, 16)) & (starts + lengths <= n)).all() and (lengths < n).any()
    np.testing.assert_array_equal(features["train_x_crops"], extract_window_features(encoder, train_set, starts,
                                                                                     lengths))
    assert features["train_x_crops"].shape == (k, 16, toy.section["hidden"])
    random_init = load_feature_file(f"data/features/{PROTOCOL}/random_init.npz")  # the same crops
    np.testing.assert_array_equal(random_init["train_crop_windows"], features["train_crop_windows"])

    # the hand-crafted baseline: the joint coordinates, whatever the method, in the same format
    frames = toy_params(toy.section)["features"]["handcrafted_frames"]
    handcrafted = load_feature_file(f"data/features/{PROTOCOL}/handcrafted.npz")
    np.testing.assert_array_equal(handcrafted["train_x"],
                                  extract_handcrafted(SkeletonH5Dataset(data, TINY_SPLIT, "train"), frames))
    assert handcrafted["test_x"].shape == (8, 3 * frames * 25 * 2)
    for key in ("train_y", "test_y", "train_ids", "test_ids", "num_classes", "class_names"):
        np.testing.assert_array_equal(handcrafted[key], features[key])
    assert "train_x_crops" not in handcrafted  # the whole sequence for train and test

    _stage("knn").main(args("knn"))
    _stage("linear").main(args("linear"))
    for stage, key in (("knn", "knn/top1"), ("linear", "linear/top1_last"), ("knn", "knn/handcrafted/top1"),
                       ("linear", "linear/handcrafted/top1_last")):
        metrics = json.loads(Path(f"reports/{stage}/{PROTOCOL}/metrics.json").read_text())
        assert 0 <= metrics[key] <= 100
    # the hand-crafted metrics are the same probe and KNN on those features
    linear = json.loads(Path(f"reports/linear/{PROTOCOL}/metrics.json").read_text())
    cfg = toy_params(toy.section)["linear"]
    train_x, test_x = standardize_features(handcrafted["train_x"], handcrafted["test_x"])
    probe = train_linear_probe(
        train_x, handcrafted["train_y"], test_x, handcrafted["test_y"], num_classes=handcrafted["num_classes"],
        epochs=cfg["epochs"], lr=cfg["lr"], milestones=cfg["milestones"], batch_size=cfg["batch_size"],
        momentum=cfg["momentum"], weight_decay=cfg["weight_decay"], eval_every=cfg["eval_every"], seed=cfg["seed"],
        device="cpu")
    assert {k: linear[f"linear/handcrafted/{k}"] for k in ("top1_last", "top5_last", "top1_best_on_test",
                                                           "best_epoch")} == {
        "top1_last": probe.top1_last, "top5_last": probe.top5_last,
        "top1_best_on_test": probe.top1_best_on_test, "best_epoch": probe.best_epoch}
    assert json.loads(Path(f"reports/knn/{PROTOCOL}/metrics.json").read_text())["knn/handcrafted/top1"] == knn_top1(
        handcrafted["train_x"], handcrafted["train_y"], handcrafted["test_x"], handcrafted["test_y"], k=1)
    history = Path(f"reports/linear/{PROTOCOL}/history_handcrafted.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in history] == probe.history
    assert Path(f"reports/linear/{PROTOCOL}/curve_handcrafted.csv").read_text().startswith("epoch,test_top1,")

    # the report: the hand-crafted row next to the random-init row, with the measured value
    _stage("report").main(["--no-mlflow", *stage_args("report")])
    rows = [line for line in Path("reports/benchmarks/ntu60.md").read_text().splitlines() if line.startswith("| ")]
    assert rows[2].startswith("| Random-init baseline (same architecture) — measured | ")
    assert rows[3].startswith("| Hand-crafted baseline (joint coordinates, logistic regression) — measured | "
                              f"{probe.top1_last:.1f} | {probe.top1_best_on_test:.1f} (ep {probe.best_epoch}) |")
    summary = json.loads(Path("reports/summary.json").read_text())
    assert summary[f"{PROTOCOL}/handcrafted_linear_top1_last"] == probe.top1_last
