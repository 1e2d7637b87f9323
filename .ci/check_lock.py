"""CI gate: the CPU-independent outputs reproduce the committed dvc.lock hashes bit for bit.

Byte-identical on any CPU (docs/reproducibility.md): every output of the data stages
(download@, preprocess@) and the random-init baseline encoders (models/<p>/encoder_random.pt,
built by skelrep.models.init.portable_init). Trained encoders, features and metrics depend
on the CPU's float kernels; .ci/check_metrics.py compares those by tolerance.
"""

from __future__ import annotations

import subprocess
import sys

import yaml

STRICT_STAGE_PREFIXES = ("download@", "preprocess@")
STRICT_PATH_SUFFIXES = ("/encoder_random.pt",)


def strict_outs(lock: dict) -> dict[str, dict[str, str]]:
    """``{stage: {path: md5}}`` of the outputs that must match on any machine."""
    out = {}
    for name, stage in lock.get("stages", {}).items():
        paths = {o["path"]: o.get("md5") for o in stage.get("outs", [])
                 if name.startswith(STRICT_STAGE_PREFIXES) or o["path"].endswith(STRICT_PATH_SUFFIXES)}
        if paths:
            out[name] = paths
    return out


def main() -> int:
    committed = yaml.safe_load(subprocess.run(["git", "show", "HEAD:dvc.lock"], check=True,
                                              capture_output=True, text=True).stdout)
    with open("dvc.lock", encoding="utf-8") as f:
        current = yaml.safe_load(f)
    want, got = strict_outs(committed), strict_outs(current)
    if not want:
        print("FAIL: the committed dvc.lock has no CPU-independent outputs")
        return 1
    bad = [(s, p, h, got.get(s, {}).get(p)) for s, paths in want.items() for p, h in paths.items()
           if got.get(s, {}).get(p) != h]
    for stage, path, expected, actual in bad:
        print(f"FAIL: {stage} {path}: committed {expected}, reproduced {actual}")
    total = sum(len(p) for p in want.values())
    print(f"{total - len(bad)} of {total} CPU-independent outputs (data stages, random-init "
          "encoders) match the committed dvc.lock")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
