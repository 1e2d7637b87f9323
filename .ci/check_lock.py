"""CI gate: the data stages (download, preprocess) reproduce the committed dvc.lock hashes.

Training and evaluation stages may differ within floating-point tolerance across machines,
so the strict hash gate covers the data stages only (mlflow_dvc.md §7.6).
"""

from __future__ import annotations

import subprocess
import sys

import yaml

STRICT_PREFIXES = ("download@", "preprocess@")


def outs(lock: dict) -> dict[str, dict[str, str]]:
    return {name: {o["path"]: o.get("md5") for o in stage.get("outs", [])}
            for name, stage in lock.get("stages", {}).items() if name.startswith(STRICT_PREFIXES)}


def main() -> int:
    committed = yaml.safe_load(subprocess.run(["git", "show", "HEAD:dvc.lock"], check=True,
                                              capture_output=True, text=True).stdout)
    with open("dvc.lock", encoding="utf-8") as f:
        current = yaml.safe_load(f)
    want, got = outs(committed), outs(current)
    bad = [(s, p, h, got.get(s, {}).get(p)) for s, paths in want.items() for p, h in paths.items()
           if got.get(s, {}).get(p) != h]
    if not want:
        print("FAIL: the committed dvc.lock has no data stages")
        return 1
    for stage, path, expected, actual in bad:
        print(f"FAIL: {stage} {path}: committed {expected}, reproduced {actual}")
    print(f"{sum(len(p) for p in want.values()) - len(bad)} data outputs match the committed dvc.lock")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
