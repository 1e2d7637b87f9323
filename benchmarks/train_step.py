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
"""

from __future__ import annotations

import argparse
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


def run_case(case: dict) -> dict:
    """Build the model, time ``steps`` steps after ``warmup``; runs inside a fresh process."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from skelrep.methods import get_method
    from skelrep.training.distributed import DistInfo
    from skelrep.training.pretrain import resolve_precision

    device = torch.device(case["device"])
    params = method_params(case["method"], case["size"], Path(case["params"]))
    method = get_method(case["method"], params)
    train = method.train_cfg
    amp = resolve_precision("auto", device)
    batch, t_max = case["batch"], int(params.get("preprocess", {}).get("max_frames", 300))
    channels, joints, persons = 3, 25, 2

    baseline = _rss_mb()
    torch.manual_seed(0)
    model = method.build_model(channels, joints, persons).to(device).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=train["lr"], weight_decay=train["weight_decay"])
    # A random raw batch like the loader yields: zero padded after each sample's length.
    g = torch.Generator().manual_seed(0)
    num_frames = torch.randint(max(method.frames, 32), t_max + 1, (batch,), generator=g)
    x = torch.randn(batch, channels, t_max, joints, persons, generator=g) * 0.5
    x *= (torch.arange(t_max)[None, :] < num_frames[:, None]).float()[:, None, :, None, None]
    x, num_frames = x.to(device), num_frames.to(device)
    aug_gen = torch.Generator(device=device).manual_seed(0)
    dist = DistInfo()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = method.training_loss(model, x, num_frames, aug_gen, dist)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # The first warm-up step also counts the FLOPs (counting slows it; it is not timed).
    flop_counter = FlopCounterMode(display=False)
    try:
        with flop_counter:
            loss = step()
        sync()
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
    return {"oom": False, "batch": batch, "step_s": step_s, "samples_per_s": batch / step_s,
            "memory_mb": memory, "flops": flop_counter.get_total_flops(), "device_name": name,
            "precision": "bf16 autocast" if amp is not None else "fp32",
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


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
            "params": str(args.params)}
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
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense bf16 peak of the GPU in TFLOP/s when it is not in the built-in table")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml", help=argparse.SUPPRESS)
    ap.add_argument("--_case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

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
