"""Benchmark one pretraining step per method and model size; prints a Markdown table.

One step = the method's ``training_loss`` on a random raw batch (N, 3, T_max, 25, 2) (it builds
the augmented views on the device and runs the model on all of them) + backward + Adam step,
exactly as in the pretraining loop (``skelrep.training.pretrain``). Reported after warm-up:
samples/s and ms/step from the median of the timed steps, and peak memory:

- CPU: peak RSS of the measuring process minus its RSS before the model and batch were built
  (``ru_maxrss``), fp32 as the loop uses on CPU. The paper size runs with a reduced batch and
  fewer steps (``--batch-cpu-paper`` 2, ``--steps-cpu-paper`` 1): one step at batch 2 is ~0.3
  TFLOP, most of a minute on 2 cores; at the paper batch 356 it would be over an hour.
- CUDA: ``torch.cuda.max_memory_allocated``, bf16 autocast (the loop's ``precision: auto``).
  The paper batch is used if it fits, else the largest power of two below it that fits. The
  dense matrix FLOPs of one step (``torch.utils.flop_counter.FlopCounterMode``: matmul, conv,
  attention; forward + backward) over the median step time give the achieved TFLOP/s and the
  fraction of the card's dense bf16 peak (table below, or ``--peak-tflops``).

Each case runs in a fresh subprocess, so peak memory of one case does not leak into the next
and an out-of-memory try leaves nothing behind.

Sizes: ``default`` = the ``<method>`` section of params.yaml as committed (the CPU profile);
``paper`` = the same section with the method's paper values (``MethodInfo.paper``, its
``defaults.py``) applied on top. Every method registered in ``skelrep.methods.METHODS`` is
benchmarked; nothing here names one.

    python benchmarks/train_step.py                       # all methods, both sizes, cpu (+ cuda)
    python benchmarks/train_step.py --sizes default --steps 3

Against the official USDRL code (``--official PATH``, a checkout of github.com/wengwanjiang/USDRL,
e.g. ``git archive`` of it unpacked): per width (``--official-sizes``, default hidden 64, 128, 256
and the paper's 1024) both programs run one step at the same configuration on CPU, fp32, with
``--threads`` torch threads (2): 2 DST layers, 64 frames, projector width 2·hidden (instance
4·hidden), 4 views, batch ``--official-batch`` (64; ``--official-batch-paper`` 16 at 1024); the
table checks that both models have the same parameter count, views, frames and batch. The official
side, in a fresh process, imports its ``pretrain.py``, ``model/DSTE.py``, ``model/loss.py`` and
``feeder/`` unchanged and runs its own ``train()`` loop (model ``USDRL`` in ``nn.DataParallel``,
its loss, ``GradScaler`` and Adam as its ``main()`` builds them; autocast and the scaler disable
themselves without CUDA) over batches of four views that its ``Feeder`` made from the same random
raw batch (per sample, numpy: in the official run this is DataLoader-worker work, so it is timed
apart). Shims, all from outside its files: ``torch.utils.tensorboard`` and ``easydict`` are stubbed
in ``sys.modules`` (imported, not used per step; not installed), and its feeder sees a numpy whose
``random.rand(1)`` returns the scalar (``int()`` of a 1-element array is an error in numpy 2; same
draw). ``--repeat R`` runs each program R times per width, interleaved (fresh process each, order
alternating); medians are reported, with the ratio of each interleaved pair and the load average.

    python benchmarks/train_step.py --official /tmp/usdrl_official --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from skelrep.methods import METHODS  # the registry (no torch): each method's section and paper values

ROOT = Path(__file__).resolve().parent.parent
SIZES = ("default", "paper")

# Dense bf16 tensor-core peak (TFLOP/s, no sparsity), matched in order against the device name.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),   # SXM
    ("H200", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
)


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def _set_dotted(section: dict, dotted: str, value) -> None:
    node = section
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def method_params(name: str, size: str, params_path: Path) -> dict:
    """The full params dict with the method section at ``size``."""
    from skelrep.params import load_params

    params = load_params(params_path)
    section = copy.deepcopy(params[name])
    if size == "paper":
        for dotted, value in METHODS[name].paper_overrides().items():
            _set_dotted(section, dotted, value)
    params[name] = section
    return params


# --------------------------------------------------------------------------- one case (child)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _maxrss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


def random_raw_batch(batch: int, t_max: int, min_frames: int, channels: int = 3, joints: int = 25,
                     persons: int = 2):
    """A random raw batch like the loader yields: ``(x (N, C, T_max, V, M), num_frames (N,))``,
    zero padded after each sample's length (drawn in [min_frames, T_max]); seed 0."""
    import torch

    g = torch.Generator().manual_seed(0)
    num_frames = torch.randint(min_frames, t_max + 1, (batch,), generator=g)
    x = torch.randn(batch, channels, t_max, joints, persons, generator=g) * 0.5
    x *= (torch.arange(t_max)[None, :] < num_frames[:, None]).float()[:, None, :, None, None]
    return x, num_frames


def run_case(case: dict) -> dict:
    """Build the model, time ``steps`` steps after ``warmup``; runs inside a fresh process.

    Optional keys (the ``--official`` comparison): ``overrides`` (dotted keys of the method
    section set after the size), ``threads`` (torch threads), ``fp32`` (no autocast even where
    the loop would use it) and ``flops`` (False: no FLOP count); ``compile`` (``--compile``):
    after the first, eager warm-up step (which counts the FLOPs), the model runs through
    ``torch.compile``; its first call (the compilation) is timed apart as ``compile_s``.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from skelrep.methods import get_method
    from skelrep.training.distributed import DistInfo
    from skelrep.training.pretrain import resolve_precision, reuse_step_memory

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    reuse_step_memory(device)  # as run_pretraining does
    params = method_params(case["method"], case["size"], Path(case["params"]))
    for dotted, value in case.get("overrides", {}).items():
        _set_dotted(params[case["method"]], dotted, value)
    method = get_method(case["method"], params)
    train = method.train_cfg
    amp = None if case.get("fp32") else resolve_precision("auto", device)
    batch, t_max = case["batch"], int(params.get("preprocess", {}).get("max_frames", 300))
    channels, joints, persons = 3, 25, 2

    baseline = _rss_mb()
    torch.manual_seed(0)
    model = method.build_model(channels, joints, persons).to(device).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=train["lr"], weight_decay=train["weight_decay"])
    x, num_frames = random_raw_batch(batch, t_max, max(method.frames, 32), channels, joints, persons)
    x, num_frames = x.to(device), num_frames.to(device)
    aug_gen = torch.Generator(device=device).manual_seed(0)
    dist = DistInfo()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    runner = model  # torch.compile(model) after the first warm-up step with --compile

    def step():
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = method.training_loss(runner, x, num_frames, aug_gen, dist)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # The first warm-up step also counts the FLOPs (counting slows it; it is not timed).
    flop_counter = FlopCounterMode(display=False)
    try:
        with flop_counter if case.get("flops", True) else contextlib.nullcontext():
            loss = step()
        sync()
        compile_s = None
        if case.get("compile"):
            runner = torch.compile(model)
            t0 = time.perf_counter()
            step()
            sync()
            compile_s = time.perf_counter() - t0
        for _ in range(max(case["warmup"] - 1, 0)):
            step()
        sync()
        times = []
        for _ in range(case["steps"]):
            t0 = time.perf_counter()
            loss = step()
            sync()
            times.append(time.perf_counter() - t0)
    except torch.cuda.OutOfMemoryError:
        return {"oom": True}
    if not torch.isfinite(loss.detach()):
        raise RuntimeError(f"non-finite loss {loss.item()}")
    step_s = statistics.median(times)
    if device.type == "cuda":
        memory = torch.cuda.max_memory_allocated(device) / 2**20
        name = torch.cuda.get_device_name(device)
    else:
        memory = _maxrss_mb() - baseline
        name = f"cpu ({torch.get_num_threads()} threads)"
    return {"oom": False, "batch": batch, "step_s": step_s, "samples_per_s": batch / step_s, "times": times,
            "views": method.aug.views if hasattr(method, "aug") else None, "frames": method.frames,
            "memory_mb": memory, "flops": flop_counter.get_total_flops(), "device_name": name,
            "precision": "bf16 autocast" if amp is not None else "fp32",
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "compile_s": compile_s,
            "params": sum(p.numel() for p in model.parameters())}


# --------------------------------------------------------------------------- the official step (child)

OFFICIAL_FRAMES, OFFICIAL_VIEWS, OFFICIAL_CROP = 64, 4, [0.1, 1]  # its options files, feeder and pretrain.py


def _import_official(repo: Path):
    """Import the official ``pretrain.py`` (and through it ``model.loss``), ``model.DSTE`` and
    ``feeder.feeder_pretraining`` of ``repo``, unchanged. Two shims from outside, as sys.modules
    stubs: ``torch.utils.tensorboard`` (its ``SummaryWriter`` import; tensorboard is not installed
    and no writer is used per step) and ``easydict`` (imported by ``tools.py``, not used per step)."""
    import types

    stubs = {"torch.utils.tensorboard": {"SummaryWriter": type("SummaryWriter", (), {})},
             "easydict": {"EasyDict": dict}}
    for name, attrs in stubs.items():
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    sys.path.insert(0, str(repo))
    import pretrain  # its argparse parser is built at import; main() is not run
    from feeder import augmentations
    from feeder.feeder_pretraining import Feeder
    from model.DSTE import USDRL

    augmentations.np = _OldNumpy()
    return pretrain, USDRL, Feeder


class _OldNumpyRandom:
    def __getattr__(self, name):
        import numpy

        return getattr(numpy.random, name)

    def rand(self, *shape):
        import numpy

        draw = numpy.random.rand(*shape)
        return draw[0] if shape == (1,) else draw


class _OldNumpy:
    """numpy as the official feeder expects it (numpy < 2): its ``temporal_cropresize`` calls
    ``int()`` on a 1-element array (``np.random.rand(1)`` times a scalar), an error in numpy 2.
    Here ``np.random.rand(1)`` gives that element (same draw, same stream); all else is numpy."""

    random = _OldNumpyRandom()

    def __getattr__(self, name):
        import numpy

        return getattr(numpy, name)


class _TimedLoader:
    """Yields prepared batches of four views to the official ``train()`` and records the time of
    every request: the gap between two requests is one whole step of its loop. With ``between``
    (a skelrep step), that step runs at every request before the batch is handed over, so the two
    programs alternate step by step and a change of the machine's load hits both alike."""

    def __init__(self, batches: list, between=None):
        self.batches, self.between = batches, between
        self.requests, self.handed = [], []  # times: request received, batch handed over

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for b in self.batches:
            self.requests.append(time.perf_counter())
            if self.between is not None:
                self.between()
            self.handed.append(time.perf_counter())
            yield b


def _skelrep_step(case: dict):
    """Our model, optimiser and raw batch at ``case`` (as ``run_case``, CPU): (step function, facts)."""
    import torch

    from skelrep.methods import get_method
    from skelrep.training.distributed import DistInfo
    from skelrep.training.pretrain import reuse_step_memory

    params = method_params("usdrl", "default", Path(case["params"]))
    for dotted, value in case["overrides"].items():
        _set_dotted(params["usdrl"], dotted, value)
    method = get_method("usdrl", params)
    reuse_step_memory(torch.device("cpu"))  # as run_pretraining does
    torch.manual_seed(0)
    model = method.build_model(3, 25, 2).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=method.train_cfg["lr"], weight_decay=method.train_cfg["weight_decay"])
    x, num_frames = random_raw_batch(case["batch"], case["t_max"], max(method.frames, 32))
    aug_gen, dist = torch.Generator().manual_seed(0), DistInfo()

    def step():
        loss = method.training_loss(model, x, num_frames, aug_gen, dist)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # as the loop's progress bar

    facts = {"params": sum(p.numel() for p in model.parameters()), "views": method.aug.views,
             "frames": method.frames, "batch": case["batch"]}
    return step, facts


def run_official_case(case: dict) -> dict:
    """The official USDRL pretraining step, in this fresh process: its ``USDRL`` (DSTE backbone +
    projectors, ``nn.DataParallel`` as its ``main()`` wraps it; on a machine without CUDA that
    calls the module directly), Adam as in its ``main()``, and its own ``train()`` loop run
    unchanged over batches of four views that its ``Feeder.__getitem__`` made from the same random
    raw batch as ours (per sample, numpy; in the official run this happens in the DataLoader
    workers, so it is timed separately as ``aug_s``, not as part of the step). Under its
    ``torch.cuda.amp`` autocast and GradScaler, which disable themselves without CUDA: fp32."""
    import random
    import tempfile
    import warnings

    import numpy as np
    import torch

    torch.set_num_threads(case["threads"])
    warnings.filterwarnings("ignore")  # torch.cuda.amp deprecation and "CUDA is not available"
    pretrain, USDRL, Feeder = _import_official(Path(case["official"]))
    hidden, batch, steps, warmup = case["hidden"], case["batch"], case["steps"], case["warmup"]
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    with contextlib.redirect_stdout(sys.stderr):  # its prints; our result is the last stdout line
        net = USDRL(t_input_size=150, s_input_size=192, hidden_size=hidden, num_head=1, num_layer=2,
                    modality="joint", alpha=0.5, gap=4, kernel_size=1)
        params = sum(p.numel() for p in net.parameters())
        model = torch.nn.DataParallel(net)
        criterion = torch.nn.MSELoss()
        optimizer = torch.optim.Adam(model.parameters(), 0.0005, weight_decay=1e-5)
        pretrain.ws = {"sim": 5, "vac": 1.0, "xcorr": 1e-3}  # set by its __main__
        pretrain.loss_rcd = {k: pretrain.AverageMeter(k, ".5e") for k in pretrain.ws}

        x, num_frames = random_raw_batch(batch, case["t_max"], max(OFFICIAL_FRAMES, 32))
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "data.npy", x.numpy())
            np.save(Path(tmp) / "num_frame.npy", num_frames.numpy())
            feeder = Feeder(str(Path(tmp) / "data.npy"), str(Path(tmp) / "num_frame.npy"),
                            l_ratio=OFFICIAL_CROP, input_size=OFFICIAL_FRAMES)
            batches, aug_times = [], []
            # + 1: the loop prints a progress line after its last batch; that step is not timed
            for _ in range(warmup + steps + 1):
                t0 = time.perf_counter()
                samples = [feeder[i] for i in range(batch)]
                views = torch.utils.data.default_collate(samples)
                aug_times.append(time.perf_counter() - t0)
                # pretrain.py's .float() (it sits in the CUDA branch of train(), so done here)
                batches.append([v.float() for v in views])
            del feeder
        ours, ours_facts = _skelrep_step(case["skelrep"]) if case.get("skelrep") else (None, None)
        loader = _TimedLoader(batches, between=ours)
        pretrain.train(torch.cuda.amp.GradScaler(), loader, model, criterion,
                       optimizer, 0, None)
    timed = range(warmup, warmup + steps)
    times = [loader.requests[k + 1] - loader.handed[k] for k in timed]
    shape = tuple(batches[0][0].shape)
    result = {"step_s": statistics.median(times), "samples_per_s": batch / statistics.median(times),
              "times": times, "params": params, "views": len(batches[0]), "frames": shape[2], "batch": shape[0],
              "aug_s": statistics.median(aug_times)}
    if ours is not None:  # our step k ran just before the official step k
        ours_times = [loader.handed[k] - loader.requests[k] for k in timed]
        step_s = statistics.median(ours_times)
        result["skelrep"] = {**ours_facts, "step_s": step_s, "samples_per_s": batch / step_s, "times": ours_times}
        result["pair_ratios"] = [o_t / s_t for o_t, s_t in zip(times, ours_times, strict=True)]
    return result


# --------------------------------------------------------------------------- driver (parent)


def _spawn(case: dict) -> dict:
    """Run one case in a child process; its result is the last line of its stdout."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_case", json.dumps(case)],
                          stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": f"exit status {proc.returncode} (see stderr)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _batches_to_try(requested: int) -> list[int]:
    """The requested batch, then the powers of two below it, largest first."""
    out, p = [requested], 1 << (requested.bit_length() - 1)
    while p >= 2:
        if p < requested:
            out.append(p)
        p //= 2
    return out


def bench(name: str, size: str, device: str, args) -> dict:
    from skelrep.methods import get_method

    requested = get_method(name, method_params(name, size, args.params)).train_cfg["batch_size"]
    case = {"method": name, "size": size, "device": device, "steps": args.steps, "warmup": args.warmup,
            "params": str(args.params), "compile": args.compile}
    note = ""
    if device == "cpu":
        candidates = [requested]
        if size == "paper":
            notes = []
            if args.batch_cpu_paper:
                candidates = [args.batch_cpu_paper]
                notes.append(f"batch reduced from {requested} on CPU")
            if args.steps_cpu_paper and args.steps_cpu_paper < args.steps:
                case.update(steps=args.steps_cpu_paper, warmup=1)
                notes.append(f"1 warm-up + {args.steps_cpu_paper} timed step(s) on CPU")
            note = "; ".join(notes)
    else:
        candidates = _batches_to_try(requested)
    result = {"error": "no batch size fits"}
    for b in candidates:
        result = _spawn({**case, "batch": b})
        if not result.get("oom"):
            break
        print(f"  {name}/{size}/{device}: batch {b} does not fit; trying a smaller one", file=sys.stderr)
    if result.get("oom"):
        result = {"error": f"out of memory down to batch {candidates[-1]}"}
    if "error" not in result and result["batch"] != requested and device != "cpu":
        note = f"{requested} does not fit: largest power of two that does"
    if result.get("compile_s") is not None:
        note = "; ".join(filter(None, [note, f"torch.compile (compiling: {result['compile_s']:.0f} s, not timed)"]))
    result.update(method=name, size=size, device=device, note=note, requested=requested)
    if device == "cuda" and "error" not in result:
        peak = args.peak_tflops or peak_tflops(result["device_name"])
        result["peak_tflops"] = peak
    return result


def _num(value: float | None) -> str:
    """3 significant digits, no exponent."""
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def table(rows: list[dict]) -> str:
    head = ("method", "size", "device", "precision", "batch", "samples/s", "ms/step", "peak memory (MB)",
            "GFLOP/step", "TFLOP/s", "% of bf16 peak", "params (M)", "notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        if "error" in r:
            cells = (r["method"], r["size"], r["device"], *([""] * (len(head) - 4)), r["error"])
        else:
            tflops = r["flops"] / r["step_s"] / 1e12
            peak = r.get("peak_tflops")
            pct = 100 * tflops / peak if peak else None
            mem_kind = "allocated" if r["device"] == "cuda" else "RSS delta"
            cells = (r["method"], r["size"], r["device_name"], r["precision"], str(r["batch"]),
                     _num(r["samples_per_s"]), _num(1000 * r["step_s"]),
                     f"{r['memory_mb']:.0f} ({mem_kind})", _num(r["flops"] / 1e9), _num(tflops),
                     _num(pct) if r["device"] == "cuda" else "–",
                     f"{r['params_m']:.2f}", r["note"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- against the official code


def equal_overrides(hidden: int, batch: int) -> dict:
    """Our ``usdrl`` section at the official configuration of the given width: 2 DST layers, 64
    frames, projector width cp = 2·hidden (instance 4·hidden), the official crops (U(0.1, 1),
    at least 64 frames), 4 views, Adam lr 5e-4, wd 1e-5; the rest of params.yaml's section already
    holds the official values (1 head, alpha 0.5, gap 4, kernel 1, DropPath 0.1, MLP 2·hidden,
    15 corrupted joints, shear ±1)."""
    return {"encoder.hidden": hidden, "encoder.num_layers": 2, "encoder.frames": OFFICIAL_FRAMES,
            "encoder.arch": "dste", "proj.cp": 2 * hidden, "aug.crop_scale": list(OFFICIAL_CROP),
            "aug.min_crop": OFFICIAL_FRAMES, "aug.views": OFFICIAL_VIEWS, "train.batch_size": batch,
            "train.lr": 0.0005, "train.weight_decay": 1e-5, "train.modality": "joint"}


def _spawn_official(case: dict) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_official", json.dumps(case)],
                          stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"the official step failed (exit status {proc.returncode}; see stderr)")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_official(args) -> int:
    """Interleaved official vs skelrep USDRL steps per width; prints the table."""
    repo = args.official.resolve()
    if not (repo / "model" / "DSTE.py").is_file() or not (repo / "pretrain.py").is_file():
        raise SystemExit(f"--official {repo}: no model/DSTE.py and pretrain.py there (expected a checkout "
                         "of github.com/wengwanjiang/USDRL)")
    sizes = []
    for item in args.official_sizes.split(","):
        if item == "paper":
            sizes.append(("paper", 1024, args.official_batch_paper, args.steps_official_paper))
        elif item.isdigit():
            sizes.append((item, int(item), args.official_batch, args.steps))
        elif item:
            raise SystemExit(f"--official-sizes: {item!r} is neither a width nor 'paper'")
    rows = []
    for label, hidden, batch, steps in sizes:
        warmup = 1 if label == "paper" else args.warmup
        ours_case = {"method": "usdrl", "size": "default", "device": "cpu", "steps": steps, "warmup": warmup,
                     "params": str(args.params), "batch": batch, "threads": args.threads, "fp32": True,
                     "flops": False, "overrides": equal_overrides(hidden, batch)}
        off_case = {"official": str(repo), "hidden": hidden, "batch": batch, "steps": steps, "warmup": warmup,
                    "threads": args.threads, "t_max": 300}
        if args.interleave == "step":
            off_case["skelrep"] = {**ours_case, "t_max": 300}
        runs = {"official": [], "skelrep": []}
        pair_ratios = []
        loads = [os.getloadavg()[0]]
        for rep in range(args.repeat):
            if args.interleave == "step":  # both in one fresh process, alternating step by step
                t0 = time.perf_counter()
                r = _spawn_official(off_case)
                runs["official"].append(r)
                runs["skelrep"].append(r["skelrep"])
                pair_ratios.append(statistics.median(r["pair_ratios"]))
                loads.append(os.getloadavg()[0])
                print(f"  {label} run {rep + 1}/{args.repeat}: official {r['samples_per_s']:.3g}, skelrep "
                      f"{r['skelrep']['samples_per_s']:.3g} samples/s ({time.perf_counter() - t0:.0f} s, load "
                      f"{loads[-1]:.1f})", file=sys.stderr, flush=True)
                continue
            order = ("official", "skelrep") if rep % 2 == 0 else ("skelrep", "official")
            for who in order:
                t0 = time.perf_counter()
                r = _spawn_official(off_case) if who == "official" else _spawn(ours_case)
                if "error" in r:
                    raise SystemExit(f"skelrep step at {label}: {r['error']}")
                runs[who].append(r)
                loads.append(os.getloadavg()[0])
                print(f"  {label} {who} run {rep + 1}/{args.repeat}: {r['samples_per_s']:.3g} samples/s "
                      f"({time.perf_counter() - t0:.0f} s, load {loads[-1]:.1f})", file=sys.stderr, flush=True)
            pair_ratios.append(runs["skelrep"][-1]["samples_per_s"] / runs["official"][-1]["samples_per_s"])
        off, ours = runs["official"][0], runs["skelrep"][0]
        same = (off["params"], off["views"], off["frames"], off["batch"]) == \
               (ours["params"], ours["views"], ours["frames"], ours["batch"])
        if not same:
            raise SystemExit(f"{label}: configurations differ: official params/views/frames/batch "
                             f"{off['params']}/{off['views']}/{off['frames']}/{off['batch']}, skelrep "
                             f"{ours['params']}/{ours['views']}/{ours['frames']}/{ours['batch']}")
        med = {who: statistics.median(r["samples_per_s"] for r in rs) for who, rs in runs.items()}
        ratios = pair_ratios
        aug = statistics.median(r["aug_s"] for r in runs["official"])
        off_step = statistics.median(r["step_s"] for r in runs["official"])
        rows.append({"size": label, "hidden": hidden, "batch": batch, "params": off["params"],
                     "official": med["official"], "skelrep": med["skelrep"],
                     "ratio": statistics.median(ratios), "ratios": ratios,
                     "with_aug": med["skelrep"] / (batch / (off_step + aug)), "aug_ms": 1000 * aug,
                     "load": (min(loads), max(loads))})
    print("## USDRL pretraining step: skelrep against the official code\n")
    print(f"CPU, {args.threads} torch threads, fp32, {os.cpu_count()} cores; torch "
          f"{__import__('torch').__version__}; official: {repo}. Per width, {args.repeat} runs; "
          + ("each a fresh process running both programs alternately step by step (skelrep step k, then "
             "official step k), " if args.interleave == "step" else
             "each program in its own fresh process, interleaved, ")
          + f"{args.warmup} warm-up + the median of the timed steps (paper size: 1 warm-up).\n")
    head = ("size", "hidden", "batch", "params (both)", "official samples/s", "skelrep samples/s",
            "× official", "per-run ×", "× official + its feeder", "official feeder (ms/batch)", "load avg (1 min)")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join((r["size"], str(r["hidden"]), str(r["batch"]), f"{r['params']:,}",
                                  _num(r["official"]), _num(r["skelrep"]), f"{r['ratio']:.2f}",
                                  " ".join(f"{x:.2f}" for x in r["ratios"]), f"{r['with_aug']:.2f}",
                                  _num(r["aug_ms"]), f"{r['load'][0]:.1f}-{r['load'][1]:.1f}")) + " |")
    print("\n- One step, both programs: 4 views of the batch -> model -> MG-FD loss -> backward -> Adam. "
          "skelrep: `training_loss` (augments the raw batch on the device in the step) + backward + "
          "Adam, as its loop. official: its `train()` from `pretrain.py` run unchanged over ready "
          "views (its augmentation runs per sample in the DataLoader workers).")
    print("- × official: median over runs of the run's ratio skelrep samples/s / official samples/s "
          "(per-run × lists them; with step interleaving a run's ratio is the median over its step pairs). "
          "The samples/s columns are medians over runs. × official + its feeder: against the official step plus its "
          "feeder's per-sample numpy augmentation of the batch (median ms/batch in the next column), "
          "as if done in the step.")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Reads the params.yaml of the repository this script belongs to.")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated methods (default: {','.join(METHODS)})")
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: default,paper")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="auto: cpu, plus cuda when available (default)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps; the median is reported (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--batch-cpu-paper", type=int, default=2,
                    help="batch of the paper size on CPU (default 2; 0 = the paper batch). One paper "
                         "step at batch 2 is ~300 GFLOP: ~45 s on 2 shared cores")
    ap.add_argument("--steps-cpu-paper", type=int, default=1,
                    help="timed steps of the paper size on CPU, after 1 warm-up (default 1; 0 = --steps)")
    ap.add_argument("--compile", action="store_true",
                    help="run the model through torch.compile (the step after compiling is timed; "
                         "measured on 2 CPU cores: no gain at hidden 64, 16%% slower at 256)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense bf16 peak of the GPU in TFLOP/s when it is not in the built-in table")
    ap.add_argument("--official", type=Path, default=None, metavar="PATH",
                    help="compare USDRL against the official code of this checkout of wengwanjiang/USDRL "
                         "instead (CPU, fp32, interleaved runs; see the module doc)")
    ap.add_argument("--official-sizes", default="64,128,256,paper",
                    help="with --official: comma-separated widths and/or 'paper' (default 64,128,256,paper)")
    ap.add_argument("--official-batch", type=int, default=64, help="with --official: batch (default 64)")
    ap.add_argument("--official-batch-paper", type=int, default=16,
                    help="with --official: batch at the paper size (default 16)")
    ap.add_argument("--steps-official-paper", type=int, default=2,
                    help="with --official: timed steps at the paper size, after 1 warm-up (default 2)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="with --official: interleaved runs per program and width; medians (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="with --official: torch threads (default 2)")
    ap.add_argument("--interleave", choices=("step", "process"), default="step",
                    help="with --official: alternate the two programs step by step in one fresh process per "
                         "run (default), or run each in its own process, alternating")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml", help=argparse.SUPPRESS)
    ap.add_argument("--_case", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_official", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._official is not None:
        print(json.dumps(run_official_case(json.loads(args._official))))
        return 0
    if args.official is not None:
        if args.repeat < 1 or args.steps < 1 or args.warmup < 1:
            ap.error("--repeat, --steps and --warmup must be >= 1")
        return compare_official(args)

    if args._case is not None:
        import torch

        try:
            result = run_case(json.loads(args._case))
        except torch.cuda.OutOfMemoryError:  # also while building the model or the batch
            result = {"oom": True}
        print(json.dumps(result))
        return 0

    import torch

    methods = [m for m in args.methods.split(",") if m]
    sizes = [s for s in args.sizes.split(",") if s]
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    for s in sizes:
        if s not in SIZES:
            ap.error(f"unknown size {s!r}; known: {', '.join(SIZES)}")
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be >= 1")
    devices = ["cpu"] if args.device != "cuda" else []
    if args.device in ("auto", "cuda"):
        if torch.cuda.is_available():
            devices.append("cuda")
        elif args.device == "cuda":
            ap.error("--device cuda: no CUDA device is available")

    print(f"benchmarking {', '.join(methods)} x {', '.join(sizes)} on {', '.join(devices)} ...",
          file=sys.stderr, flush=True)
    rows = []
    for name in methods:
        for size in sizes:
            for device in devices:
                t0 = time.perf_counter()
                rows.append(bench(name, size, device, args))
                print(f"  {name}/{size}/{device}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print("## Pretraining step (augmented views + forward + MG-FD/loss + backward + Adam)\n")
    print(f"{os.cpu_count()} CPU cores; CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'}; "
          f"torch {torch.__version__}; {args.warmup} warm-up + median of {args.steps} timed steps.\n")
    print(table(rows))
    print()
    for name in methods:
        info = METHODS[name]
        print(f"- {name} paper size ({info.paper_source}): "
              + ", ".join(f"{k}={v}" for k, v in info.paper_overrides().items()) + "; default = params.yaml.")
    print("- TFLOP/s: dense matrix FLOPs of one step (FlopCounterMode: matmul/conv/attention, forward "
          "+ backward) / median step time; % of peak on GPU only (dense bf16 peak of the card).")
    print("- peak memory: CPU = peak RSS minus RSS before building the model (fresh process per row); "
          "CUDA = torch.cuda.max_memory_allocated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
