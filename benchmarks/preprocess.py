"""Benchmark the preprocessing stage on an NTU-sized synthetic workload; prints a Markdown table.

The synthetic generator writes at least ``--files`` (default 5,000) ``.skeleton`` files into a
temporary raw folder (several NTU-60-style zips + manifest.json, as the download stage does),
then ``preprocess_dataset('ntu60', ...)`` runs on it with 1 worker and with all cores,
each in a fresh process. Measured: wall time of the call, files/s, and the peak RSS of the
process tree (the preprocessing process + its pool workers; RSS summed over the tree, sampled
every 50 ms: shared copy-on-write pages count once per process, so this over-estimates). The
same runs on about N/5 files show that memory does not grow with N.

The extrapolation to NTU-120 (114,480 files) on 16 cores is printed twice:
- linear: the per-core rate measured with all cores here, times 16 (the assumption asked for);
- writer-bound: the HDF5 writing happens in the one parent process, so the run can never be
  faster than (parent CPU seconds per file) x files, whatever the worker count.
Targets: peak RSS < 2 GB at any N (RSS and PSS sums of the tree shown); 114,480 files in < 15 min on 16 cores.

With ``--official PATH`` (a checkout of the UmURL repository, github.com/HuiGuanLab/UmURL, holding
``data_gen/ntu_gendata.py``), the official data generation runs on the same files, in a fresh process
with the same interpreter and the same memory sampling, before the skelrep runs at each N: its
``gendata(benchmark='xsub', part='train')`` then ``part='val'`` (what it takes to produce ntu60-xsub;
its ``__main__`` would also do a second benchmark), with the official missing-skeleton list as its
ignored samples. It reads a folder of extracted ``.skeleton`` files, so the zips are extracted first
(not timed). The table then gives each skelrep row's files/s as a multiple of the official one at the
same N. ``--repeat R`` runs every configuration R times (interleaved) and reports the median run.

    python benchmarks/preprocess.py                  # 5,000 files (and 1,000)
    python benchmarks/preprocess.py --files 1000 --small-files 200
    python benchmarks/preprocess.py --files 2000 --official ../UmURL --repeat 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NTU120_FILES = 114_480
TARGET_RSS_MB = 2048
TARGET_MINUTES = 15
TARGET_CORES = 16
DATASET = "ntu60"

# NTU-60 xsub training performers (the official cross-subject list, as in skelrep.data.ntu); the
# rest of 1..40 are test performers.
_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
_XSUB_TEST = tuple(p for p in range(1, 41) if p not in _XSUB_TRAIN)
_PER_PAIR_CLASS = 2 * 3 * 2  # 2 performers x 3 cameras x 2 replications


# --------------------------------------------------------------------------- workload


def plan(files: int) -> tuple[int, int]:
    """(performer pairs, classes) so that pairs x 12 x classes >= files, as few files over as possible.

    Each pair is one train and one test performer (xsub), recorded by 3 cameras, 2 replications.
    NTU-60 allows at most 20 pairs x 60 classes = 14,400 files.
    """
    max_files = len(_XSUB_TRAIN) * _PER_PAIR_CLASS * 60
    if not 1 <= files <= max_files:
        raise ValueError(f"--files must be in 1..{max_files:,} (the NTU-60 id ranges)")
    pairs = min(len(_XSUB_TRAIN), max(1, math.ceil(files / (_PER_PAIR_CLASS * 60))))
    return pairs, math.ceil(files / (pairs * _PER_PAIR_CLASS))


def _write_part(job: tuple[int, int, int, str]) -> str:
    """One zip with one (train, test) performer pair; returns its file name in the raw folder."""
    from skelrep.data.synthetic import NTU60_ARCHIVE, SyntheticNTUConfig, write_ntu_archives

    k, classes, seed, raw_dir = job
    cfg = SyntheticNTUConfig(performers=(_XSUB_TRAIN[k], _XSUB_TEST[k]),
                             setups=((2 * k) % 17 + 1, (2 * k + 1) % 17 + 1),
                             replications=(1, 2), classes=classes)
    part_dir = Path(raw_dir) / f".part{k:02d}"
    part_dir.mkdir()
    # one process per part: this runs in a pool worker, which may not start a pool of its own
    [(path, _role)] = write_ntu_archives(part_dir, "ntu60", cfg, seed=seed, workers=1)
    name = f"part{k:02d}-{NTU60_ARCHIVE}"
    os.replace(path, Path(raw_dir) / name)
    shutil.rmtree(part_dir)
    return name


def build_raw(raw_dir: Path, files: int, seed: int, jobs: int) -> int:
    """Synthetic archives + manifest.json in ``raw_dir``; returns the number of .skeleton files."""
    import multiprocessing as mp

    from skelrep.data.download import ArchiveSpec, write_manifest

    pairs, classes = plan(files)
    raw_dir.mkdir(parents=True)
    work = [(k, classes, seed, str(raw_dir)) for k in range(pairs)]
    if jobs > 1 and pairs > 1:
        with mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(
                min(jobs, pairs)) as pool:
            names = pool.map(_write_part, work, chunksize=1)
    else:
        names = [_write_part(w) for w in work]
    write_manifest(raw_dir, "ntu60", "synthetic",
                   [ArchiveSpec(name=n, role="skeleton", source=None) for n in names])
    return pairs * _PER_PAIR_CLASS * classes


# --------------------------------------------------------------------------- one run (child)


def run_child(job: dict) -> dict:
    """preprocess_dataset in this (fresh) process; wall time and CPU of self vs pool workers."""
    import resource

    from skelrep.data.preprocess import PreprocessConfig, preprocess_dataset, resolve_workers

    cfg = PreprocessConfig(workers=job["workers"])
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    summary = preprocess_dataset(DATASET, {"ntu60": Path(job["raw"])}, Path(job["out"]), cfg)
    seconds = time.perf_counter() - t0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = lambda a, b: (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)  # noqa: E731
    return {"seconds": seconds, "workers": resolve_workers(cfg.workers),
            "samples": summary.num_samples, "dropped": summary.dropped_missing,
            "skipped": len(summary.skipped), "cpu_parent": cpu(self0, self1), "cpu_workers": cpu(kids0, kids1),
            "out_mb": Path(job["out"]).stat().st_size / 2**20}


def run_official_child(job: dict) -> dict:
    """The official ``gendata`` for xsub train and val in this (fresh) process; wall time and CPU."""
    import resource

    sys.path.insert(0, job["repo"])
    from data_gen.ntu_gendata import gendata  # the official module, unchanged

    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for part in ("train", "val"):
        gendata(job["data"], str(out), job["ignored"], benchmark="xsub", part=part)
    seconds = time.perf_counter() - t0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    out_mb = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    return {"seconds": seconds, "workers": 1, "cpu_parent": cpu, "cpu_workers": 0.0, "out_mb": out_mb}


def extract_skeletons(raw_dir: Path, dest: Path) -> int:
    """Every ``.skeleton`` member of the raw folder's zips, flat in ``dest`` (the official input)."""
    import zipfile

    dest.mkdir(parents=True)
    count = 0
    for archive in sorted(raw_dir.glob("*.zip")):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.endswith(".skeleton"):
                    (dest / Path(name).name).write_bytes(z.read(name))
                    count += 1
    return count


def official_repo(path: Path) -> Path:
    if not (path / "data_gen" / "ntu_gendata.py").is_file():
        raise SystemExit(f"--official {path}: no data_gen/ntu_gendata.py there (expected a checkout of "
                         "github.com/HuiGuanLab/UmURL)")
    return path.resolve()


# --------------------------------------------------------------------------- driver (parent)


class TreeSampler(threading.Thread):
    """Peak memory of a process and its descendants.

    RSS every ``interval`` s: summed over the tree, and per process (parent, largest worker).
    PSS (shared pages split between the processes sharing them; the tree's real footprint)
    every ``pss_every`` samples, as reading it costs a few ms per process.
    """

    def __init__(self, pid: int, interval: float = 0.05, pss_every: int = 5):
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.interval, self.pss_every = interval, pss_every
        self.stop = threading.Event()
        self.peak_tree = self.peak_parent = self.peak_child = 0
        self.peak_pss = self.peak_parent_pss = self.peak_child_pss = 0

    def run(self) -> None:
        import psutil

        tick = 0
        while not self.stop.is_set():
            with_pss = tick % self.pss_every == 0
            tick += 1
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            rss, pss = [], []
            for i, proc in enumerate(procs):
                try:
                    if with_pss:
                        info = proc.memory_full_info()
                        pss.append(info.pss)
                    else:
                        info = proc.memory_info()
                    rss.append(info.rss)
                except psutil.Error:  # a process that just exited
                    if i == 0:
                        return
            if not rss:
                continue
            self.peak_parent = max(self.peak_parent, rss[0])
            self.peak_child = max(self.peak_child, *rss[1:], 0)
            self.peak_tree = max(self.peak_tree, sum(rss))
            if pss:
                self.peak_parent_pss = max(self.peak_parent_pss, pss[0])
                self.peak_child_pss = max(self.peak_child_pss, *pss[1:], 0)
                self.peak_pss = max(self.peak_pss, sum(pss))
            self.stop.wait(self.interval)


def measure(raw_dir: Path, out: Path, workers: int, log_path: Path) -> dict:
    job = json.dumps({"raw": str(raw_dir), "out": str(out), "workers": workers})
    result = _sampled(["--_run", job], log_path)
    out.unlink(missing_ok=True)
    result["program"] = "skelrep"
    return result


def measure_official(repo: Path, data: Path, ignored: Path, out: Path, log_path: Path) -> dict:
    job = json.dumps({"repo": str(repo), "data": str(data), "ignored": str(ignored), "out": str(out)})
    result = _sampled(["--_official", job], log_path)
    shutil.rmtree(out, ignore_errors=True)
    result["program"] = "official"
    return result


def _sampled(args: list[str], log_path: Path) -> dict:
    """Run this script with ``args`` in a fresh process, sampling its tree's memory."""
    with open(log_path, "w") as log:  # tqdm's progress bars and warnings go here, not to the table
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args],
                                stdout=subprocess.PIPE, stderr=log, text=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        stdout, _ = proc.communicate()
        sampler.stop.set()
        sampler.join()
    if proc.returncode != 0:
        sys.stderr.write(Path(log_path).read_text()[-4000:])
        raise SystemExit(f"preprocessing failed (exit status {proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    mb = 2**20
    result.update(peak_tree_mb=sampler.peak_tree / mb, peak_parent_mb=sampler.peak_parent / mb,
                  peak_worker_mb=sampler.peak_child / mb, peak_pss_mb=sampler.peak_pss / mb,
                  peak_parent_pss_mb=sampler.peak_parent_pss / mb,
                  peak_worker_pss_mb=sampler.peak_child_pss / mb)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000,
                    help="at least this many .skeleton files (default 5000; at most 14,400)")
    ap.add_argument("--small-files", type=int, default=None,
                    help="the smaller workload that shows memory is flat in N (default files/5; 0: skip)")
    ap.add_argument("--workers", default=None,
                    help="comma-separated worker counts (default: 1 and all cores, 0 = all cores)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    ap.add_argument("--tmpdir", type=Path, default=None,
                    help="where the temporary raw folders and HDF5 files go (default: the system's)")
    ap.add_argument("--official", type=Path, default=None, metavar="PATH",
                    help="also time the official UmURL data_gen/ntu_gendata.py of this checkout on the same files")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of every configuration, interleaved; the median run is reported (default 1)")
    ap.add_argument("--_run", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_official", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._run is not None:
        print(json.dumps(run_child(json.loads(args._run))))
        return 0
    if args._official is not None:
        print(json.dumps(run_official_child(json.loads(args._official))))
        return 0
    repo = official_repo(args.official) if args.official is not None else None
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    cores = os.cpu_count() or 1
    workers = ([int(w) for w in args.workers.split(",")] if args.workers else sorted({1, cores}))
    workers = [w if w > 0 else cores for w in workers]
    small = args.files // 5 if args.small_files is None else args.small_files
    sizes = [n for n in (small, args.files) if n > 0]
    try:
        for n in sizes:
            plan(n)
    except ValueError as exc:
        ap.error(str(exc))

    rows = []
    with tempfile.TemporaryDirectory(prefix="skelrep-bench-", dir=args.tmpdir) as tmp:
        tmp = Path(tmp)
        for n in sizes:
            t0 = time.perf_counter()
            raw = tmp / f"raw-{n}"
            files = build_raw(raw, n, args.seed, cores)
            raw_mb = sum(p.stat().st_size for p in raw.glob("*.zip")) / 2**20
            print(f"  generated {files:,} files ({raw_mb:.0f} MB of zips) in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
            if repo is not None:
                skeletons = tmp / f"skeletons-{n}"
                extract_skeletons(raw, skeletons)
                ignored = tmp / "missing.txt"  # the official list, in its own format
                ignored.write_text(_missing_list(), encoding="utf-8")
            runs: dict[str, list[dict]] = {}
            for rep in range(args.repeat):
                configs = (["official"] if repo is not None else []) + [str(w) for w in workers]
                for config in configs:
                    log = tmp / f"log-{n}-{config}-{rep}.txt"
                    if config == "official":
                        r = measure_official(repo, skeletons, ignored, tmp / "official-out", log)
                    else:
                        r = measure(raw, tmp / "out.h5", int(config), log)
                    r.update(files=files, raw_mb=raw_mb, repeat=args.repeat)
                    runs.setdefault(config, []).append(r)
                    print(f"  {files:,} files, {config if config == 'official' else config + ' worker(s)'}: "
                          f"{r['seconds']:.1f} s", file=sys.stderr, flush=True)
            rows += [sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for rs in runs.values()]
            shutil.rmtree(raw)
            if repo is not None:
                shutil.rmtree(skeletons)
    report(rows, cores)
    return 0


def _missing_list() -> str:
    import importlib.resources

    return importlib.resources.files("skelrep.data").joinpath(
        f"missing/{DATASET}_missing_skeletons.txt").read_text(encoding="utf-8")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def report(rows: list[dict], cores: int) -> None:
    official = {r["files"]: r for r in rows if r["program"] == "official"}
    print(f"## Preprocessing ({DATASET}: every sample once, splits xsub and xview; synthetic archives)\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{cores} CPU cores ({_cpu_model()}), load average {load:.1f} at the end. Peak RSS: summed over the "
          f"process tree (parent + pool workers), sampled every 50 ms; parent and largest single worker also "
          f"shown apart. Peak PSS (shared pages split between the processes that share them, sampled every "
          f"250 ms): the tree's real footprint."
          + (f" Median of {rows[0]['repeat']} interleaved runs per row." if rows[0].get("repeat", 1) > 1 else "")
          + (" official: UmURL's data_gen/ntu_gendata.py, gendata xsub train + val, on the extracted files "
             "(one process); its output is the .npy files it writes. × official: files/s over the official "
             "files/s at the same N; × official, CPU: the official run's CPU seconds over this run's (parent + "
             "workers), which other jobs on the machine disturb less." if official else "") + "\n")
    head = ("program", "files", "workers", "seconds", "files/s", "× official", "× official, CPU",
            "peak RSS tree (MB)", "peak PSS tree (MB)", "parent RSS (MB)", "largest worker RSS (MB)", "parent CPU/file",
            "worker CPU/file", "output (MB)")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        pool = r["workers"] > 1  # with 1 worker everything runs in the parent process
        rate = r["files"] / r["seconds"]
        ref = official.get(r["files"])
        compare = ref is not None and ref is not r
        ratio = f"{rate / (ref['files'] / ref['seconds']):.1f}" if compare else "–"
        # CPU seconds of the official run / of this run (parent + workers): less sensitive to other load
        cpu_ratio = f"{ref['cpu_parent'] / (r['cpu_parent'] + r['cpu_workers']):.1f}" if compare else "–"
        cells = [r["program"], f"{r['files']:,}", str(r["workers"]), f"{r['seconds']:.1f}", f"{rate:.1f}", ratio,
                 cpu_ratio, f"{r['peak_tree_mb']:.0f}", f"{r['peak_pss_mb']:.0f}", f"{r['peak_parent_mb']:.0f}",
                 f"{r['peak_worker_mb']:.0f}" if pool else "–",
                 f"{r['cpu_parent'] / r['files'] * 1000:.1f} ms",
                 f"{r['cpu_workers'] / r['files'] * 1000:.1f} ms" if pool else "–", f"{r['out_mb']:.0f}"]
        print("| " + " | ".join(cells) + " |")
    rows = [r for r in rows if r["program"] == "skelrep"]
    odd = {r["files"]: r for r in rows if r["dropped"] or r["skipped"] or r["samples"] + r["dropped"] != r["files"]}
    for r in odd.values():
        print(f"\n({r['files']:,} files: {r['samples']:,} samples written, {r['dropped']} dropped as listed "
              f"missing, {r['skipped']} skipped)")

    largest = max(r["files"] for r in rows)
    big = [r for r in rows if r["files"] == largest]
    best = max(big, key=lambda r: r["workers"])
    per_core = largest / best["seconds"] / best["workers"]
    linear_s = NTU120_FILES / (per_core * TARGET_CORES)
    # The parent process parses nothing when workers > 1, but it receives and writes every sample.
    par = [r for r in big if r["workers"] > 1]
    serial_s = (NTU120_FILES * par[0]["cpu_parent"] / largest) if par else None
    worker_s = (NTU120_FILES * par[0]["cpu_workers"] / largest / TARGET_CORES) if par else None
    peak_rss = max(r["peak_tree_mb"] for r in rows)
    peak_pss = max(r["peak_pss_mb"] for r in rows)
    rss16 = (max(r["peak_parent_mb"] for r in par) + TARGET_CORES * max(r["peak_worker_mb"] for r in par)
             if par else None)
    pss16 = (max(r["peak_parent_pss_mb"] for r in par) + TARGET_CORES * max(r["peak_worker_pss_mb"] for r in par)
             if par else None)
    ok = lambda cond: "met" if cond else "NOT met"  # noqa: E731

    print("\n### Extrapolation to NTU-120 (114,480 files) on 16 cores\n")
    print(f"- linear (assumption: throughput scales linearly with cores from the per-core rate measured with "
          f"{best['workers']} worker(s) on {largest:,} files, {per_core:.1f} files/s/core; synthetic files "
          f"about as large as real ones; same CPU speed): **{linear_s / 60:.1f} min** "
          f"(target < {TARGET_MINUTES} min: {ok(linear_s < TARGET_MINUTES * 60)})")
    if serial_s is not None:
        bound = max(serial_s, worker_s)
        print(f"- writer-bound (the single parent process receives and writes every sample: "
              f"{par[0]['cpu_parent'] / largest * 1000:.1f} ms CPU/file, so at least {serial_s / 60:.1f} min "
              f"whatever the core count; workers {worker_s / 60:.1f} min of parsing on 16 cores): "
              f"**>= {bound / 60:.1f} min** (target < {TARGET_MINUTES} min: {ok(bound < TARGET_MINUTES * 60)})")
    print(f"- peak memory measured here: RSS sum {peak_rss:.0f} MB, PSS sum {peak_pss:.0f} MB (target < "
          f"{TARGET_RSS_MB} MB: {ok(peak_rss < TARGET_RSS_MB)}); flat in N when the rows at different N agree.")
    if rss16 is not None:
        print(f"- with 16 workers, estimated as parent + 16 x largest worker: RSS sum {rss16:.0f} MB (shared "
              f"pages counted in every process mapping them; target: {ok(rss16 < TARGET_RSS_MB)}), "
              f"PSS sum {pss16:.0f} MB (target: {ok(pss16 < TARGET_RSS_MB)})")


if __name__ == "__main__":
    sys.exit(main())
