"""How far trained results move when the CPU's float kernels change (the CI metrics tolerance).

Runs the pipeline for the given protocols in a throw-away clone of HEAD (MLflow off), once
natively and once with every kernel choice forced to the baseline that an older or ARM CPU
would run (numpy without SIMD targets, OpenBLAS Prescott kernels, ATen ``default``, MKL and
oneDNN on SSE), and prints a Markdown table: data, random-init and trained-encoder hashes
(the first two must be equal) and each metric of both runs with the difference.
``.ci/check_metrics.py`` takes its tolerance from such runs.

    python benchmarks/cross_cpu.py --protocols pku2-xsub ntu60-xsub
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def restricted_env() -> dict[str, str]:
    from skelrep.portable import baseline_kernel_env
    return baseline_kernel_env(platform.machine())


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run ``cmd``; return the stages DVC ran."""
    result = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    lines = (result.stdout + result.stderr).splitlines()
    return [line.split("'")[1] for line in lines if line.startswith("Running stage")]


def _metrics(root: Path, protocols: list[str]) -> dict[str, float]:
    out = {}
    for stage in ("pretrain", "linear", "knn", "detect"):
        for protocol in protocols:
            path = root / "reports" / stage / protocol / "metrics.json"
            if path.exists():
                for key, value in json.loads(path.read_text()).items():
                    if isinstance(value, (int, float)) and "per_s" not in key and "seconds" not in key:
                        out[f"{protocol} {key}"] = float(value)
    return out


def _hashes(root: Path, protocols: list[str]) -> dict[str, str]:
    files = sorted((root / "data" / "raw").glob("*/*.zip"))
    files += sorted({root / "data" / "processed" / f"{p.split('-')[0]}.h5" for p in protocols})  # <dataset>.h5
    files += [root / "models" / p / name for p in protocols for name in ("encoder_random.pt", "encoder.pt")]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()[:12] for f in files}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", default=["pku2-xsub", "ntu60-xsub"])
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="skelrep-cross-cpu-"))
    clone = tmp / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    params = (clone / "params.yaml").read_text().replace("\nmlflow:\n  enabled: true", "\nmlflow:\n  enabled: false")
    (clone / "params.yaml").write_text(params)
    dvc = [str(Path(sys.executable).with_name("dvc")), "repro", "--no-run-cache"]
    targets = [f"{stage}@{p}" for p in args.protocols for stage in ("linear", "knn")]
    if "pku1-xsub" in args.protocols:
        targets.append("detect")
    # the clone's own package first (the venv's editable install points at this checkout)
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(clone / "src")}
    _run(dvc + targets, clone, env)
    native, native_hashes = _metrics(clone, args.protocols), _hashes(clone, args.protocols)
    # every stage of the targets again (download and preprocess included), on the other kernels
    rerun = _run(dvc + ["--force"] + targets, clone, {**env, **restricted_env()})
    other, other_hashes = _metrics(clone, args.protocols), _hashes(clone, args.protocols)

    print(f"restricted kernels: {restricted_env()}")
    print(f"re-run with them: {', '.join(rerun)}\n")
    print("| file | native | restricted |\n|---|---|---|")
    for name in native_hashes:
        print(f"| {name} | {native_hashes[name]} | {other_hashes[name]} |")
    print("\n| metric | native | restricted | difference |\n|---|---|---|---|")
    for name in native:
        print(f"| {name} | {native[name]:.4f} | {other.get(name, float('nan')):.4f} | "
              f"{other.get(name, float('nan')) - native[name]:+.4f} |")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    portable = {k: v for k, v in native_hashes.items() if not k.endswith("/encoder.pt")}
    return 0 if all(other_hashes[k] == v for k, v in portable.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
