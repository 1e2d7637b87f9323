"""DDP on 2 CPU processes (gloo): loss over the global batch, exact single-process gradient."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from skelrep.losses.mgfd import mgfd_loss
from skelrep.methods.usdrl.method import USDRL
from skelrep.training.distributed import DistInfo, gather_with_grad

from ..conftest import REPO_ROOT, write_tiny_h5
from .test_pretrain import TINY_USDRL

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_and_views():
    torch.manual_seed(0)
    section = {**TINY_USDRL, "encoder": {**TINY_USDRL["encoder"], "drop_path": 0.0}}
    method = USDRL(section)
    model = method.build_model(3, 25, 2)
    model.train()
    for m in model.modules():  # batch statistics per rank would differ from the global batch
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
    views = [torch.randn(8, 3, 16, 25, 2) for _ in range(4)]
    return model, views


def _loss(model, views, info: DistInfo):
    z = model(views)
    z = {d: [gather_with_grad(v, info) for v in vs] for d, vs in z.items()}
    return mgfd_loss(z)["total"]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    model, views = _model_and_views()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    per = views[0].shape[0] // WORLD
    local = [v[rank * per:(rank + 1) * per] for v in views]
    loss = _loss(ddp, local, DistInfo(rank, WORLD, rank))
    loss.backward()
    if rank == 0:
        torch.save({"loss": loss.detach(), "grads": {n: p.grad.clone() for n, p in model.named_parameters()
                                                    if p.grad is not None}}, out)
    dist.destroy_process_group()


def test_ddp_gradient_equals_single_process_gradient(tmp_path):
    out = str(tmp_path / "rank0.pt")
    mp.start_processes(_worker, args=(_free_port(), out), nprocs=WORLD, start_method="spawn")
    ddp = torch.load(out)
    model, views = _model_and_views()
    loss = _loss(model, views, DistInfo())
    loss.backward()
    assert torch.allclose(ddp["loss"], loss.detach(), rtol=1e-5)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == ddp["grads"].keys()
    # MG-FD is invariant to a constant shift of z, so the last projector biases have an
    # (analytically) zero gradient that is pure summation-order noise in float32: compare
    # against the scale of the whole gradient, not per tensor.
    full = torch.cat([g.flatten() for g in grads.values()])
    full_ddp = torch.cat([ddp["grads"][n].flatten() for n in grads])
    assert (full_ddp - full).norm() <= 1e-4 * full.norm()
    scale = full.abs().max()
    for name, g in grads.items():
        assert torch.allclose(ddp["grads"][name], g, rtol=1e-3, atol=1e-4 * scale), name


@pytest.mark.slow
def test_torchrun_pretrain_stage_two_processes(tmp_path):
    """The documented command: torchrun --nproc_per_node=2 stages/pretrain.py ..."""
    import yaml

    data = write_tiny_h5(tmp_path / "tiny.h5", n_train=16, frames=24)
    section = {**TINY_USDRL, "train": {**TINY_USDRL["train"], "epochs": 1, "batch_size": 8}}
    # the committed file, as every stage validates all of it first
    params = {**yaml.safe_load((REPO_ROOT / "params.yaml").read_text()), "method": "usdrl", "usdrl": section,
              "mlflow": {"enabled": False}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DVC_ROOT": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
           str(_free_port()), str(REPO_ROOT / "stages" / "pretrain.py"), "--protocol", "ntu60-xsub",
           "--params", "params.yaml", "--data", str(data), "--out", "models", "--reports", "reports"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "models" / "encoder.pt").exists()
    stats = (tmp_path / "reports" / "stats.jsonl").read_text().splitlines()
    assert len(stats) == 1
