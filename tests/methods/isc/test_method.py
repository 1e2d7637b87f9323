"""ISC as a method: two views -> inter-skeleton MoCo terms; encoder file -> the same features
downstream (query branch, no head); params errors name the dotted key."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.errors import ParamsError, SkelrepError
from skelrep.methods import build_encoder, get_method
from skelrep.methods.isc.method import ISC, ISCEncoder
from skelrep.methods.isc.moco import InterSkeletonMoCo, IscFeatureEncoder
from skelrep.models.encoder_file import load_encoder_file, save_encoder
from skelrep.models.modalities import make_modality
from skelrep.params import load_params
from skelrep.profiles import apply_assignments, profile_assignments
from skelrep.skeleton import NTU_PARENTS
from skelrep.training.distributed import DistInfo
from skelrep.training.pretrain import run_pretraining

from ...conftest import REPO_ROOT, TINY_SPLIT, write_tiny_h5

TINY_ISC = {
    "pair": "seq_graph",
    "eval_encoder": "seq",
    "frames": 16,
    "gru": {"hidden": 8, "layers": 2, "mode": "causal_official"},
    "agcn": {"base_channels": 4},
    "hcn": {"width": 8},
    "moco": {"dim": 8, "k": 32, "m": 0.9, "t": 0.2, "mlp": True, "key_update": "ema", "shuffle_bn": False},
    "aug": {"crop_scale": [0.1, 1.0], "corrupt_joints": 15, "p_zero": 0.5, "shear_range": 1.0, "p_corrupt": 0.5,
            "min_crop": 16, "views": 2},
    "train": {"modality": "joint", "optimizer": "sgd", "lr": 0.05, "weight_decay": 1e-4, "momentum": 0.9,
              "batch_size": 8, "epochs": 2, "min_steps": 0, "milestones": [1], "lr_gamma": 0.1, "precision": "fp32",
              "device": "cpu", "ckpt_every": 1, "workers": 0, "seed": 0},
}


def tiny_isc(**overrides) -> ISC:
    section = copy.deepcopy(TINY_ISC)
    section.update(overrides)
    return ISC(section)


def _batch(n=8, t_max=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t_max, 25, 2, generator=g), torch.tensor([40, 30, 20, 40, 16, 35, 25, 18][:n])


def test_training_loss_has_every_term_and_backpropagates_into_the_queries_only():
    method = tiny_isc()
    model = method.build_model(3, 25, 2)
    assert isinstance(model, InterSkeletonMoCo) and method.aug.views == 2 and not method.sync_bn
    x, nf = _batch()
    terms = method.training_loss(model, x, nf, torch.Generator().manual_seed(0), DistInfo())
    assert set(terms) == {"total", "ce_q", "ce_r", "acc_q", "acc_r"}
    assert all(torch.isfinite(v) for v in terms.values())
    assert torch.allclose(terms["total"], terms["ce_q"] + terms["ce_r"])
    terms["total"].backward()
    for branch in (model.encoder_q, model.encoder_r):
        assert all(p.grad is not None for p in branch.parameters())
    for branch in (model.encoder_k, model.encoder_l):
        assert all(p.grad is None for p in branch.parameters())
    assert int(model.queue_ptr_s1) == int(model.queue_ptr_s2) == 8


def _views_fed_to_model(method: ISC):
    """The two views ``training_loss`` hands the model, and the joint views augmentation makes
    from the same batch and seed."""
    seen = []

    def model(view1, view2, dist):
        seen.append((view1, view2))
        return {"total": torch.zeros(())}

    x, nf = _batch()
    method.training_loss(model, x, nf, torch.Generator().manual_seed(3), DistInfo())
    return seen, method.aug.make_views(x, nf, 16, generator=torch.Generator().manual_seed(3))


def test_views_are_two_augmentations_of_the_batch_at_the_clip_length():
    seen, want = _views_fed_to_model(tiny_isc())
    assert len(want) == 2 and want[0].shape == (8, 3, 16, 25, 2)
    assert torch.equal(seen[0][0], want[0]) and torch.equal(seen[0][1], want[1])


def test_short_run_gives_finite_history_and_an_encoder(tmp_path):
    dataset = SkeletonH5Dataset(write_tiny_h5(tmp_path / "tiny.h5", frames=24), TINY_SPLIT, "train")
    method = tiny_isc()
    result = run_pretraining(method, method.train_cfg, dataset, device=torch.device("cpu"),
                             ckpt_dir=tmp_path / "ckpt", fingerprint="t", progress=False)
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert {"loss", "loss/ce_q", "loss/ce_r", "loss/acc_q", "loss/acc_r", "lr"} <= set(result.history[0])
    assert all(math.isfinite(v) for h in result.history for v in h.values())
    payload = result.encoder_payload
    assert payload["method"] == "isc" and payload["arch"] == "isc_gru"
    assert payload["extra"] == {"kind": "seq", "pair": "seq_graph", "frames": 16, "modality": "joint",
                                "parents": list(NTU_PARENTS)}
    assert not any(k.startswith(("0.", "2.")) for k in payload["state_dict"])  # no head
    encoder = build_encoder({**payload, "format": "skelrep-encoder/1"})
    assert encoder.features(torch.randn(2, 3, 16, 25, 2)).shape == (2, 16)


@pytest.mark.parametrize("pair, kind, arch, dim", [
    ("seq_graph", "seq", "isc_gru", 16),      # 2*hidden
    ("seq_graph", "graph", "isc_agcn", 16),   # 4*base_channels
    ("graph_image", "image", "isc_hcn", 32),  # 4*width*(frames/16)^2
])
def test_encoder_file_round_trip_gives_identical_features(tmp_path, pair, kind, arch, dim):
    method = tiny_isc(pair=pair, eval_encoder=kind)
    torch.manual_seed(0)
    model = method.build_model(3, 25, 2).eval()
    save_encoder(tmp_path / "encoder.pt", **method.encoder_payload(model))
    payload = load_encoder_file(tmp_path / "encoder.pt")
    assert payload["arch"] == arch
    encoder = build_encoder(payload)
    assert isinstance(encoder, ISCEncoder) and not encoder.training
    clip = torch.randn(3, 3, 16, 25, 2)
    with torch.no_grad():
        assert torch.equal(encoder.features(clip), model.query_branch(kind).features(clip))
    assert encoder.frames == 16 and encoder.feature_dim == dim
    if kind == "seq":
        assert encoder.dense_dim == dim
        with torch.no_grad():
            dense = encoder.dense_features(clip)
        assert dense.shape == (3, 16, dim)
        assert torch.allclose(dense[:, -1], encoder.features(clip))  # the global feature is the last frame
    else:
        with pytest.raises(SkelrepError, match="eval_encoder: seq"):
            encoder.dense_features(clip)


def test_committed_params_section_validates():
    params = load_params(REPO_ROOT / "params.yaml")
    method = get_method("isc", params)
    assert method.frames == params["isc"]["frames"] and method.aug.views == 2
    assert method.model_cfg.moco.k % method.train_cfg["batch_size"] == 0
    assert set(method.log_params) >= {"pair", "eval_encoder", "frames", "moco_k", "gru_hidden",
                                      "agcn_base_channels"}



def test_paper_profile_gives_the_official_configuration():
    params = load_params(REPO_ROOT / "params.yaml")
    method = get_method("isc", apply_assignments(params, profile_assignments("paper", params, "isc")))
    c = method.model_cfg
    assert (c.pair, c.eval_encoder, method.frames) == ("seq_graph", "seq", 64)
    assert (c.gru.hidden, c.gru.layers, c.gru.mode) == (1024, 3, "causal_official")
    assert (method.agcn_base_channels, method.hcn_width) == (64, 64)
    assert (c.moco.dim, c.moco.k, c.moco.m, c.moco.t, c.moco.mlp) == (128, 16384, 0.999, 0.07, True)
    assert method.aug.min_crop == 64 and method.aug.views == 2
    t = method.train_cfg
    assert (t["optimizer"], t["lr"], t["momentum"], t["weight_decay"], t["batch_size"]) == ("sgd", 0.01, 0.9, 1e-4, 64)
    assert (t["epochs"], t["milestones"], t["ckpt_every"]) == (451, [351], 10)

@pytest.mark.parametrize("key", ["frames", "agcn", "hcn"])
def test_missing_adapter_keys_are_errors(key):
    section = copy.deepcopy(TINY_ISC)
    del section[key]
    with pytest.raises(ParamsError, match="missing") as info:
        ISC(section)
    assert info.value.key == f"isc.{key}"


@pytest.mark.parametrize("path, value, key", [
    (("train", "warmup"), 3, "isc.train.warmup"),
    (("train", "modality"), "velocity", "isc.train.modality"),
    (("gru", "hiden"), 8, "isc.gru.hiden"),
    (("agcn", "width"), 8, "isc.agcn.width"),
    (("hcn", "width"), 1, "isc.hcn.width"),
    (("frames",), 0, "isc.frames"),
    (("aug", "rotate"), 0.1, "isc.aug.rotate"),
    (("aug", "views"), 4, "isc.aug.views"),
    (("moco", "k"), 36, "isc.moco.k"),             # not a multiple of batch_size 8
    (("moco", "shuffle_bn"), True, "isc.moco.shuffle_bn"),
    (("eval_encoder",), "image", "isc.eval_encoder"),  # not a representation of seq_graph
    (("backbone",), "gru", "isc.backbone"),
])
def test_bad_keys_raise_params_error_naming_the_dotted_key(path, value, key):
    section = copy.deepcopy(TINY_ISC)
    node = section
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ParamsError) as err:
        get_method("isc", {"isc": section})
    assert err.value.key == key


def test_unknown_top_level_key_lists_every_key():
    with pytest.raises(ParamsError, match="allowed keys: pair, eval_encoder, frames, gru, agcn, hcn, moco, aug, train"):
        get_method("isc", {"isc": {**TINY_ISC, "backbone": "gru"}})


def test_image_pair_needs_sixteen_frames():
    with pytest.raises(ParamsError) as err:
        tiny_isc(pair="graph_image", eval_encoder="graph", frames=8)
    assert err.value.key == "isc.frames"
    tiny_isc(frames=8)  # seq_graph has no HCN


def test_bone_stream_feeds_bones_to_both_encoders_and_is_recorded(tmp_path):
    """isc.train.modality (labelled extension): the views become bones before the encoders,
    and the frozen encoder derives the same stream from joint clips."""
    method = tiny_isc(train={**TINY_ISC.get("train", {}), "modality": "bone"})
    seen, joints = _views_fed_to_model(method)
    assert torch.equal(seen[0][0], make_modality(joints[0], "bone"))
    assert torch.equal(seen[0][1], make_modality(joints[1], "bone"))

    net = method.build_model(3, 25, 2)
    payload = method.encoder_payload(net)
    assert payload["extra"]["modality"] == "bone"
    encoder = ISCEncoder(payload).eval()
    clip = joints[0]
    with torch.no_grad():
        want = IscFeatureEncoder(payload).eval().features(make_modality(clip, "bone"))
        assert torch.allclose(encoder.features(clip), want)


def test_unknown_stream_is_rejected_naming_the_key():
    with pytest.raises(ParamsError, match="isc.train.modality"):
        tiny_isc(train={**TINY_ISC.get("train", {}), "modality": "velocity"})
