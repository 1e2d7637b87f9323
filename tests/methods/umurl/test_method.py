"""UmURL as a method: four views -> six z -> consistency + VC loss; encoder file -> the same
features downstream; params errors name the dotted key."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.errors import ParamsError
from skelrep.methods import build_encoder, get_method
from skelrep.methods.umurl.method import UmURL, UmURLEncoder
from skelrep.models.encoder_file import load_encoder_file, save_encoder
from skelrep.params import load_params
from skelrep.profiles import apply_assignments, profile_assignments
from skelrep.training.distributed import DistInfo
from skelrep.training.pretrain import run_pretraining

from ...conftest import REPO_ROOT, TINY_SPLIT, write_tiny_h5

TINY_UMURL = {
    "encoder": {"hidden": 16, "heads": 1, "num_layers": 1, "ffn": 16, "t_pe_max_len": 200, "frames": 16},
    "proj": {"dims": [32, 32, 48], "bn": "local"},
    "loss": {"w_consistency": 5, "vac_var_weight": 5, "vac_cov_weight": 1, "var_eps": 1e-4, "gather": True,
             "fp32": True},
    "aug": {"crop_scale": [0.1, 1.0], "corrupt_joints": 15, "p_zero": 0.5, "shear_range": 1.0, "p_corrupt": 0.5,
            "min_crop": 16, "views": 4},
    "eval_input": "fused",
    "init": "torch_default",
    "train": {"optimizer": "adam", "lr": 2e-3, "weight_decay": 1e-5, "momentum": 0.9, "batch_size": 8,
              "epochs": 2, "min_steps": 0, "milestones": [1], "lr_gamma": 0.1, "precision": "fp32", "device": "cpu",
              "ckpt_every": 1, "workers": 0, "seed": 0},
}


def tiny_umurl(eval_input="fused", **train_overrides) -> UmURL:
    section = copy.deepcopy(TINY_UMURL)
    section["eval_input"] = eval_input
    section["train"].update(train_overrides)
    return UmURL(section)


def _batch(n=6, t_max=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, t_max, 25, 2, generator=g)
    num_frames = torch.tensor([40, 30, 20, 40, 16, 35][:n])
    return x, num_frames


def test_training_loss_has_every_term_and_backpropagates():
    method = tiny_umurl()
    model = method.build_model(3, 25, 2)
    x, nf = _batch()
    terms = method.training_loss(model, x, nf, torch.Generator().manual_seed(0), DistInfo())
    assert set(terms) == {"intra", "inter", "reg", "total"}
    assert all(torch.isfinite(v) for v in terms.values())
    assert torch.allclose(terms["total"], 5 * (terms["intra"] + terms["inter"]) + terms["reg"])
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_views_feed_joint_bone_motion_and_fused_paths_in_order():
    method = tiny_umurl()
    model = method.build_model(3, 25, 2)
    backbone = model.net.backbone
    seen = []
    real_encode = backbone.encode

    def spy(clip, modality=None):
        seen.append((modality, clip))
        return real_encode(clip, modality)

    backbone.encode = spy
    x, nf = _batch()
    method.training_loss(model, x, nf, torch.Generator().manual_seed(3), DistInfo())
    views = method.aug.make_views(x, nf, 16, generator=torch.Generator().manual_seed(3))
    # official order: the fused path first (v4), then the uni paths of v1, v2, v3
    assert [m for m, _ in seen] == [None, "joint", "bone", "motion"]
    for (_, clip), view in zip(seen, [views[3], views[0], views[1], views[2]], strict=True):
        assert torch.equal(clip, view)


def test_short_run_gives_finite_history_and_an_encoder(tmp_path):
    dataset = SkeletonH5Dataset(write_tiny_h5(tmp_path / "tiny.h5", frames=24), TINY_SPLIT, "train")
    method = tiny_umurl()
    result = run_pretraining(method, method.train_cfg, dataset, device=torch.device("cpu"),
                             ckpt_dir=tmp_path / "ckpt", fingerprint="t", progress=False)
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert {"loss", "loss/intra", "loss/inter", "loss/reg", "lr"} <= set(result.history[0])
    assert all(math.isfinite(v) for h in result.history for v in h.values())
    payload = result.encoder_payload
    assert payload["method"] == "umurl" and payload["arch"] == "umurl"
    assert payload["extra"] == {"eval_input": "fused"}
    assert not any(k.startswith("projectors") for k in payload["state_dict"])
    encoder = build_encoder({**payload, "format": "skelrep-encoder/1"})
    assert encoder.features(torch.randn(2, 3, 16, 25, 2)).shape == (2, 32)


@pytest.mark.parametrize("eval_input, modality", [("fused", None), ("joint_only", "joint")])
def test_encoder_file_round_trip_gives_identical_features(tmp_path, eval_input, modality):
    method = tiny_umurl(eval_input)
    model = method.build_model(3, 25, 2).eval()
    save_encoder(tmp_path / "encoder.pt", **method.encoder_payload(model))
    encoder = build_encoder(load_encoder_file(tmp_path / "encoder.pt"))
    assert isinstance(encoder, UmURLEncoder) and not encoder.training
    clip = torch.randn(3, 3, 16, 25, 2)
    with torch.no_grad():
        assert torch.equal(encoder.features(clip), model.net.backbone.encode(clip, modality))
        assert torch.equal(encoder.dense_features(clip), model.net.backbone.encode_dense(clip, modality))
    assert encoder.frames == 16 and encoder.feature_dim == 32 and encoder.dense_dim == 32
    assert encoder.dense_features(clip).shape == (3, 16, 32)


def test_fused_and_joint_only_features_differ():
    torch.manual_seed(0)
    model = tiny_umurl().build_model(3, 25, 2).eval()
    clip = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        assert not torch.allclose(model.net.backbone.encode(clip), model.net.backbone.encode(clip, "joint"))


def test_committed_params_section_validates():
    params = load_params(REPO_ROOT / "params.yaml")
    method = get_method("umurl", params)
    assert method.frames == params["umurl"]["encoder"]["frames"]
    assert method.aug.views == 4 and method.sync_bn is (params["umurl"]["proj"]["bn"] == "sync")
    assert set(method.log_params) >= {"hidden", "frames", "w_consistency", "eval_input"}



def test_paper_profile_gives_the_official_configuration():
    params = load_params(REPO_ROOT / "params.yaml")
    method = get_method("umurl", apply_assignments(params, profile_assignments("paper", params, "umurl")))
    c = method.model_cfg
    e = c.encoder
    assert (e.hidden, e.ffn, e.heads, e.num_layers, e.t_pe_max_len, e.frames) == (1024, 1024, 1, 1, 200, 64)
    assert c.proj.dims == (2048, 2048, 4096) and method.sync_bn
    assert method.aug.min_crop == 64 and method.aug.views == 4
    t = method.train_cfg
    assert (t["optimizer"], t["lr"], t["weight_decay"]) == ("adam", 5e-4, 1e-5)
    assert (t["epochs"], t["milestones"], t["ckpt_every"]) == (451, [351], 50)
    assert t["batch_size"] in (512, 1024)  # per benchmark: NTU-60 xsub 512, the others 1024


@pytest.mark.parametrize("path, value, key", [
    (("train", "warmup"), 3, "umurl.train.warmup"),
    (("train", "modality"), "joint", "umurl.train.modality"),  # UmURL uses all three modalities
    (("encoder", "hiden"), 16, "umurl.encoder.hiden"),
    (("aug", "rotate"), 0.1, "umurl.aug.rotate"),
    (("aug", "views"), 2, "umurl.aug.views"),
    (("loss", "gather"), "yes", "umurl.loss.gather"),
    (("eval_input",), "bone_only", "umurl.eval_input"),
    (("momentum",), 0.99, "umurl.momentum"),
])
def test_bad_keys_raise_params_error_naming_the_dotted_key(path, value, key):
    section = copy.deepcopy(TINY_UMURL)
    node = section
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ParamsError) as err:
        get_method("umurl", {"umurl": section})
    assert err.value.key == key


def test_sync_bn_follows_the_proj_section():
    section = copy.deepcopy(TINY_UMURL)
    section["proj"]["bn"] = "sync"
    assert UmURL(section).sync_bn and not tiny_umurl().sync_bn


# ---------------------------------------------------------------- DDP, 2 CPU processes (gather with gradient)

WORLD, GLOBAL_BATCH = 2, 8


def _fixed_views(seed=5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(GLOBAL_BATCH, 3, 16, 25, 2, generator=g) for _ in range(4)]


def _grads_with_fixed_views(views, info, wrap=None):
    """Gradients of ``training_loss`` when the augmentation returns ``views`` (BN in eval mode,
    so per-rank batch statistics do not enter; the gather is what is compared)."""
    torch.manual_seed(0)
    method = tiny_umurl()
    model = method.build_model(3, 25, 2)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    method.aug = type("FixedViews", (), {"make_views": lambda self, *a, **k: views})()
    x, nf = torch.zeros(views[0].shape[0], 3, 16, 25, 2), torch.full((views[0].shape[0],), 16)
    train_model = wrap(model) if wrap else model  # keep the DDP wrapper alive through backward
    terms = method.training_loss(train_model, x, nf, None, info)
    terms["total"].backward()
    return float(terms["total"].detach()), {n: p.grad.clone() for n, p in model.named_parameters()}


def _ddp_worker(rank: int, port: int, out: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    per = GLOBAL_BATCH // WORLD
    local = [v[rank * per:(rank + 1) * per] for v in _fixed_views()]
    loss, grads = _grads_with_fixed_views(local, DistInfo(rank, WORLD, rank),
                                          wrap=torch.nn.parallel.DistributedDataParallel)
    torch.save({"loss": loss, "grads": grads}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_ddp_gradient_equals_single_process_on_the_global_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "grads")
    mp.start_processes(_ddp_worker, args=(port, out), nprocs=WORLD, start_method="spawn")
    loss, grads = _grads_with_fixed_views(_fixed_views(), DistInfo())
    for rank in range(WORLD):
        state = torch.load(f"{out}.{rank}")
        assert state["loss"] == pytest.approx(loss, rel=1e-5)
        for name, g in grads.items():
            assert torch.allclose(state["grads"][name], g, rtol=1e-4, atol=1e-6), name
