"""The download stage of the default suite: wall and CPU time per dataset, and output digests.

Runs ``stages/download.py --dataset <ds> --out <tmp>`` of this checkout (and of ``--baseline``,
another checkout, e.g. a worktree of main) in a fresh process per run, ``--repeat`` times,
interleaved, with the committed params.yaml. Per run: wall time, CPU time (user + system of the
stage and its worker processes) and the load average before it (other jobs on a shared machine
stretch wall time much more than CPU time). Prints a Markdown table of the medians, and whether
every output file (archives, split files, manifest.json) has the same sha256 in every run and,
with ``--baseline``, in both checkouts. Exit status 1 when they differ. About a minute per
repeat on 2 cores.

    python benchmarks/download.py
    python benchmarks/download.py --baseline ../main --repeat 2 --datasets ntu60,pku1
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skelrep.io import sha256_file

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ntu60", "ntu120", "pku1", "pku2")


def _run(root: Path, dataset: str, out: Path) -> dict:
    """One stage run of checkout ``root`` into ``out``: times and the outputs' digests."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "PYTHONDONTWRITEBYTECODE": "1"}  # leave root as it is
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(root / "stages" / "download.py"), "--dataset", dataset,
                    "--out", str(out), "--params", str(root / "params.yaml")],
                   cwd=root, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the stage and its reaped workers
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    digests = {p.name: sha256_file(p) for p in sorted(out.iterdir())}
    return {"wall": wall, "cpu": cpu, "load": load, "digests": digests}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (e.g. main)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args(argv)
    checkouts = {"this": REPO}
    if args.baseline:
        checkouts = {"baseline": args.baseline.resolve(), **checkouts}
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="skelrep-download-") as tmp:
        for dataset in args.datasets.split(","):
            for i in range(args.repeat):
                for name, root in checkouts.items():  # interleaved: both see similar load
                    out = Path(tmp) / f"{name}-{dataset}-{i}"
                    runs.setdefault((dataset, name), []).append(_run(root, dataset, out))
    print("| dataset | checkout | runs | wall s (median) | CPU s (median) | load avg (1 min) |")
    print("|---|---|---|---|---|---|")
    for (dataset, name), results in runs.items():
        loads = ", ".join(f"{r['load']:.1f}" for r in results)
        print(f"| {dataset} | {name} | {len(results)} | {statistics.median(r['wall'] for r in results):.1f} "
              f"| {statistics.median(r['cpu'] for r in results):.1f} | {loads} |")
    same = True
    for dataset in args.datasets.split(","):
        digests = [r["digests"] for name in checkouts for r in runs[(dataset, name)]]
        equal = all(d == digests[0] for d in digests)
        same &= equal
        print(f"{dataset}: {len(digests[0])} files, sha256 {'identical' if equal else 'DIFFERENT'} "
              f"in all {len(digests)} runs")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
