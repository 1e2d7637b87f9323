"""The CUDA paths of a pretraining step, checked on the CPU (the development machines have no GPU).

On a GPU every host read of a device value (``.item()``, ``bool(t)``, ``int(t)``) waits for the
queued kernels; a step with one cannot run ahead of the card. Such reads all go through
``aten._local_scalar_dense``, so a dispatch mode sees them on the CPU as well: a step of every
registered method (augmented views + forward + loss + backward) may read only
the frame counts, which the loop keeps on the host. ``meta`` tensors stand in for device tensors
where a read of one would have to fail (they hold no values). The loss must also stay float32
under bf16 autocast, the loop's precision on a GPU, and ``train.workers: auto`` must load in
worker processes on a GPU only.
"""

from __future__ import annotations

import copy
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from skelrep.data.augment import _check_num_frames
from skelrep.errors import ParamsError
from skelrep.methods import METHODS, get_method
from skelrep.params import load_params
from skelrep.training.distributed import DistInfo
from skelrep.training.pretrain import GPU_LOADER_WORKERS, _batches, loader_workers

from ..conftest import REPO_ROOT


class HostReads(TorchDispatchMode):
    """Records the Python function that asked for each value read back to the host."""

    def __init__(self):
        super().__init__()
        self.readers: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket is torch.ops.aten._local_scalar_dense:
            ours = [f for f in traceback.extract_stack() if "/skelrep/" in f.filename]
            self.readers.append(f"{ours[-1].name} ({ours[-1].filename.rsplit('/', 1)[-1]}:{ours[-1].lineno})"
                                if ours else "outside skelrep")
        return func(*args, **(kwargs or {}))


def raw_batch(n: int = 16, t_max: int = 120):
    g = torch.Generator().manual_seed(0)
    num_frames = torch.randint(40, t_max + 1, (n,), generator=g)
    x = torch.randn(n, 3, t_max, 25, 2, generator=g)
    x *= (torch.arange(t_max)[None, :] < num_frames[:, None]).float()[:, None, :, None, None]
    return x, num_frames


@pytest.fixture(scope="module")
def params():
    return load_params(REPO_ROOT / "params.yaml")


def test_the_probe_sees_a_host_read():
    t = torch.ones(3)
    with HostReads() as probe:
        bool((t > 0).any())
        (t * 2).sum().item()
    assert len(probe.readers) == 2


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_training_step_reads_back_only_the_host_frame_counts(name, params):
    method = get_method(name, params)
    torch.manual_seed(0)
    model = method.build_model(3, 25, 2).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x, num_frames = raw_batch()
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # the second step runs with the optimiser's state (and ISC's queue) in place
        with HostReads() as probe:
            loss = method.training_loss(model, x, num_frames, generator, DistInfo())["total"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        # not probed: Adam reads its step counts, which PyTorch keeps on the host on a GPU too
        optimizer.step()
        # the one read: the counts' range check, made on the host copy (next test)
        assert probe.readers and all(r.startswith("_check_num_frames ") for r in probe.readers), probe.readers


def test_frame_counts_are_checked_on_the_host_before_the_copy():
    x = torch.empty(4, 3, 50, 25, 2, device="meta")  # a device batch: its values cannot be read
    on_device = _check_num_frames(x, torch.tensor([1, 20, 50, 7], dtype=torch.int32))
    assert on_device.device.type == "meta" and on_device.dtype == torch.int64
    with pytest.raises(ValueError, match=r"\[1, 50\]"):
        _check_num_frames(x, torch.tensor([1, 51, 5, 7]))
    with pytest.raises(RuntimeError, match="meta"):  # counts already on the device are read there
        _check_num_frames(x, torch.tensor([1, 20, 50, 7], device="meta"))


def test_the_loop_moves_the_batch_and_leaves_the_frame_counts_on_the_host():
    class Items:
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return torch.full((3, 10, 25, 2), float(i)), 5 + i

    order = [torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])]
    batches = list(_batches(Items(), order, 0, torch.device("meta")))
    assert [x.device.type for x, _ in batches] == ["meta", "meta"]
    assert [nf.device.type for _, nf in batches] == ["cpu", "cpu"]
    assert [nf.tolist() for _, nf in batches] == [[5, 6, 7], [8, 9, 10]]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_the_loss_stays_float32_under_bf16_autocast(name, params):
    method = get_method(name, params)
    torch.manual_seed(0)
    model = method.build_model(3, 25, 2).train()
    x, num_frames = raw_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = method.training_loss(model, x, num_frames, torch.Generator().manual_seed(0), DistInfo())
    loss = terms["total"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is None or g.dtype == torch.float32 for g in grads)
    assert sum(g is not None for g in grads) > len(grads) // 2  # the step reaches most of the model


def test_loader_workers_auto_loads_in_process_on_cpu_and_in_workers_on_a_gpu(monkeypatch):
    assert loader_workers("auto", torch.device("cpu")) == 0
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert loader_workers("auto", torch.device("cuda", 0)) == GPU_LOADER_WORKERS
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    assert loader_workers("auto", torch.device("cuda", 0)) == 2  # one core left to the training process
    assert loader_workers(3, torch.device("cpu")) == 3


@pytest.mark.parametrize("bad", ["two", -1, True, 1.5])
def test_train_workers_names_the_key_and_what_is_allowed(bad, params):
    section = copy.deepcopy(params["usdrl"])
    section["train"]["workers"] = bad
    with pytest.raises(ParamsError, match=r"usdrl\.train\.workers.*'auto' or an integer >= 0"):
        get_method("usdrl", {**params, "usdrl": section})
