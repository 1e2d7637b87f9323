"""The generic pretraining loop: tiny and flat (after the VICReg / Barlow Twins scripts).

It trains ``train_schedule(train_cfg, len(dataset))`` epochs: ``train.epochs``, or more on a
small train split when ``train.min_steps`` asks for more optimiser steps (milestones scaled).
Per epoch it appends one line to a JSON-lines ``stats`` history, every ``ckpt_every`` epochs
(and after the last) it writes a full checkpoint (model, optimizer, scaler, scheduler, RNG
states, history) for resume into ``ckpt_dir``, and at the end it returns the backbone-only
encoder payload that downstream stages depend on. A checkpoint in ``ckpt_dir`` is used only when
its fingerprint is the run's (see ``checkpoint``); the caller deletes it once the outputs are
written. Data order and augmentation randomness are re-seeded from (seed, epoch, rank) at every
epoch start, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..errors import SkelrepError
from ..io import write_csv_atomic, write_jsonl_atomic
from ..memory import reuse_large_blocks
from ..models.init import portable_init
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, all_reduce_mean
from .optim import EagerAdam, EagerSGD
from .schema import TrainSchedule, train_schedule

log = logging.getLogger(__name__)


# On a GPU every host read of a device value (``float(loss)``, ``if torch.isfinite(loss)``) waits
# for the queued kernels, so the CPU cannot run ahead and the card idles between steps. There the
# loop keeps the loss sums and the finiteness flag on the device and reads them every
# SYNC_EVERY steps and at the end of the epoch; on the CPU a read costs nothing and happens each
# step (a non-finite loss then stops training before its update).
SYNC_EVERY = 25


class NonFiniteLossError(SkelrepError):
    pass


@dataclass
class PretrainResult:
    history: list[dict]
    encoder_payload: dict
    resumed_from_epoch: int | None
    schedule: TrainSchedule | None = None  # the epochs and milestones the run trained
    samples_per_s: float | None = None  # None when no epoch was left to train (resumed after the last)
    peak_memory_mb: float = 0.0


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for plain fp32. bf16 by default on GPU, fp32 on CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _epoch_order(n: int, batch: int, seed: int, epoch: int, dist: DistInfo) -> list[torch.Tensor]:
    """Shuffled global batches (drop_last), each rank taking its contiguous slice."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    per_rank = batch // dist.world_size
    batches = []
    for lo in range(0, n - batch + 1, batch):
        glob = perm[lo: lo + batch]
        batches.append(glob[dist.rank * per_rank: (dist.rank + 1) * per_rank])
    return batches


def build_model_for(method, dataset, seed: int) -> nn.Module:
    """The method's model for the dataset's skeleton: C, V, M and the bone tree of its layout.

    Initialised by ``portable_init`` from ``seed``, so the initial weights, and the random-init
    baseline encoder, are the same on every CPU.
    """
    channels, _, joints, persons = dataset.sample_shape
    with portable_init(seed):
        return method.build_model(channels, joints, persons, parents=dataset.layout.parents)


def run_pretraining(method, train_cfg: dict, dataset, *, device: torch.device, ckpt_dir: Path,
                    dist: DistInfo = DistInfo(), fingerprint: str = "",
                    on_epoch_end: Callable[[dict], None] | None = None,
                    progress: bool = True) -> PretrainResult:
    """Train ``method`` on ``dataset`` (a SkeletonH5Dataset-like: items (joint, num_frame, ...),
    ``sample_shape`` and ``layout``)."""
    seed = train_cfg["seed"]
    if train_cfg["batch_size"] % dist.world_size:
        raise SkelrepError(f"train.batch_size {train_cfg['batch_size']} is not divisible by the "
                           f"{dist.world_size} processes")
    if len(dataset) < train_cfg["batch_size"]:
        raise SkelrepError(f"the training split has {len(dataset)} samples, fewer than one batch "
                           f"({train_cfg['batch_size']})")
    schedule = train_schedule(train_cfg, len(dataset))  # decided before training; the same on resume
    if schedule.extended:
        log.info("train.min_steps %d: %d epochs of %d steps instead of %d (milestones %s)",
                 train_cfg["min_steps"], schedule.epochs, schedule.steps_per_epoch, train_cfg["epochs"],
                 schedule.milestones)
    reuse_step_memory(device)
    torch.manual_seed(seed)
    model = build_model_for(method, dataset, seed)
    if dist.enabled and getattr(method, "sync_bn", False):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    train_model: nn.Module = model
    if dist.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    params = [p for p in model.parameters() if p.requires_grad]
    if train_cfg["optimizer"] == "adam":
        optimizer = EagerAdam(params, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    else:
        optimizer = EagerSGD(params, lr=train_cfg["lr"], momentum=train_cfg["momentum"],
                             weight_decay=train_cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, schedule.milestones, train_cfg["lr_gamma"])
    amp_dtype = resolve_precision(train_cfg["precision"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    history: list[dict] = []
    start_epoch, resumed = 0, None
    state = load_checkpoint(ckpt_dir, fingerprint)  # None, or this configuration's (checked before use)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        history = state["history"]
        start_epoch = resumed = state["epoch"] + 1
        log.info("resuming from the checkpoint of epoch %d in %s", state["epoch"], ckpt_dir)

    steps_per_epoch = schedule.steps_per_epoch
    samples_seen, train_time = 0, 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for epoch in range(start_epoch, schedule.epochs):
        train_model.train()
        aug_gen = torch.Generator(device=device).manual_seed(seed * 7_919 + epoch * 104_729 + dist.rank)
        torch.manual_seed(seed * 31 + epoch)  # DropPath etc.: epoch-seeded so resume is exact
        sums: dict[str, torch.Tensor] = {}  # float64 on the device: the same sums as Python floats
        finite = torch.ones((), dtype=torch.bool, device=device)
        sync_every = _sync_every(device)
        checked = 0  # the first step not yet checked for a finite loss
        epoch_samples = 0
        t0 = time.perf_counter()
        order = _epoch_order(len(dataset), train_cfg["batch_size"], seed, epoch, dist)
        bar = tqdm(_batches(dataset, order, loader_workers(train_cfg["workers"], device), device), total=len(order),
                   desc=f"epoch {epoch}", disable=not (progress and dist.is_main), leave=False)
        for step, (x, num_frames) in enumerate(bar):
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                terms = method.training_loss(train_model, x, num_frames, aug_gen, dist)
            loss = terms["total"]
            finite = finite & torch.isfinite(loss.detach())
            if (step + 1) % sync_every == 0 or step + 1 == len(order):
                if not bool(finite):  # a host read: every step on CPU, every sync_every steps on GPU
                    last = f"epoch {history[-1]['epoch']}" if history else "none"
                    where = f"step {step}" if checked == step else f"steps {checked}-{step}"
                    raise NonFiniteLossError(
                        f"the loss became {loss.item()} at epoch {epoch}, {where}; training stopped. "
                        f"The last good checkpoint is kept in {ckpt_dir} ({last}); lower the learning rate or "
                        f"use precision fp32.")
                checked = step + 1
                bar.set_postfix(loss=f"{loss.item():.4f}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach().double() if k in sums else v.detach().double()
            epoch_samples += x.shape[0] * dist.world_size
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_time = time.perf_counter() - t0
        samples_seen += epoch_samples
        train_time += epoch_time
        stats = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        stats.update({f"loss/{k}" if k != "total" else "loss": all_reduce_mean(float(v) / steps_per_epoch, dist, device)
                      for k, v in sorted(sums.items())})
        scheduler.step()
        history.append(stats)
        if dist.is_main:
            log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.5g}" for k, v in stats.items() if k != "epoch"))
        last_epoch = epoch == schedule.epochs - 1
        if dist.is_main and ((epoch + 1) % train_cfg["ckpt_every"] == 0 or last_epoch):
            save_checkpoint(ckpt_dir, {
                "fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": rng_state(), "history": history})
        if on_epoch_end is not None:
            on_epoch_end({**stats, "samples_per_s": _rate(epoch_samples, epoch_time)})
    peak = (torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else _peak_rss_mb()
    return PretrainResult(history=history, encoder_payload=method.encoder_payload(model),
                          resumed_from_epoch=resumed, schedule=schedule,
                          samples_per_s=_rate(samples_seen, train_time),
                          peak_memory_mb=peak)



# DataLoader workers that ``train.workers: auto`` starts on a GPU: a sample is ~0.5 ms of HDF5
# read and inflate, so a paper batch (356-1024) read in the training process would leave the card
# waiting; on a CPU the training threads already take every core, so the reads stay in process.
GPU_LOADER_WORKERS = 8


def reuse_step_memory(device: torch.device) -> bool:
    """On a CPU, every step's tensors come from the pages of the step before
    (:func:`skelrep.memory.reuse_large_blocks`); on a GPU the host allocates little per step.
    Called by :func:`run_pretraining`, and by the step benchmark so it times the same setting."""
    return device.type == "cpu" and reuse_large_blocks()


def loader_workers(workers: int | str, device: torch.device) -> int:
    """``train.workers`` as a count of DataLoader worker processes (``auto``: see GPU_LOADER_WORKERS)."""
    if workers != "auto":
        return int(workers)
    if device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(GPU_LOADER_WORKERS, cores - 1))


def _sync_every(device: torch.device) -> int:
    """Steps between the loop's host reads of the loss (module comment at SYNC_EVERY)."""
    return SYNC_EVERY if device.type == "cuda" else 1


def _rate(samples: int, seconds: float) -> float | None:
    """Samples per second, or None (logged as nothing, never NaN) when nothing was timed."""
    return samples / seconds if samples and seconds > 0 else None


def _collate(items):
    return torch.stack([it[0] for it in items]), torch.tensor([it[1] for it in items])


def _batches(dataset, order: list[torch.Tensor], workers: int, device: torch.device):
    """Raw (N, C, T_max, V, M) batches on the device, with their frame counts left on the host
    (pinned on a GPU): augmentation validates the counts there and copies them without waiting
    for the device."""
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[b.tolist() for b in order],
                                         num_workers=workers, collate_fn=_collate,
                                         pin_memory=device.type == "cuda")
    for x, num_frames in loader:
        yield x.to(device, non_blocking=True), num_frames


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_stats(path: Path, history: list[dict]) -> None:
    """The per-epoch stats: JSON lines (the log of record) and the same rows as ``.csv`` next to
    it (DVC plots read CSV, not JSON lines). Values only, no timings."""
    write_jsonl_atomic(path, history)
    write_csv_atomic(Path(path).with_suffix(".csv"), history)
