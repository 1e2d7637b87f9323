"""Resume checkpoints of the pretraining loop: written atomically, read back safely.

The resume state is not a DVC output. The pretrain stage keeps it in ``models/.resume/<protocol>/``
(git-ignored, not declared in dvc.yaml, so DVC neither removes it before a run nor reports it in
``dvc status``) and deletes it once the run's final outputs are written: only an interrupted run
leaves a checkpoint behind, and only a run of the same configuration (fingerprint) resumes from it.

Everything in a checkpoint is a tensor or a plain Python value (the RNG states included), so it is
read with ``torch.load(weights_only=True)``: a file holding any other pickled object is refused,
never executed. The fingerprint is compared before any weight is used.

``torch.save`` bytes depend on the file name (the zip's top folder is the stem), so the
checkpoint is saved under its final name inside a temporary folder and then moved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError

log = logging.getLogger(__name__)

CKPT_NAME = "checkpoint.pt"
FORMAT = "skelrep-resume/2"
REQUIRED = ("fingerprint", "epoch", "model", "optimizer", "scheduler", "scaler", "rng", "history")


class CheckpointError(DataError):
    """A resume checkpoint that cannot be used: unreadable, truncated, or not a skelrep checkpoint."""


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        torch.save(obj, tmpdir / path.name)
        os.replace(tmpdir / path.name, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def rng_state() -> dict:
    """The global RNG states as tensors and plain values (loadable with ``weights_only=True``)."""
    version, internal, gauss_next = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((int(py["version"]), tuple(py["state"].tolist()), py["gauss_next"]))
    np.random.set_state({"bit_generator": npy["bit_generator"],
                         "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": int(npy["pos"])},
                         "has_gauss": int(npy["has_gauss"]), "gauss": float(npy["gauss"])})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def run_fingerprint(obj) -> str:
    """A run's identity for resuming: the hash of everything that decides its result (a
    checkpoint is used only by a run of the same fingerprint)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_path(ckpt_dir: str | os.PathLike) -> Path:
    return Path(ckpt_dir) / CKPT_NAME


def save_checkpoint(ckpt_dir: str | os.PathLike, state: dict) -> Path:
    path = checkpoint_path(ckpt_dir)
    save_torch_atomic({"format": FORMAT, **state}, path)
    return path


def load_checkpoint(ckpt_dir: str | os.PathLike, fingerprint: str | None = None,
                    map_location="cpu") -> dict | None:
    """The checkpoint in ``ckpt_dir``, or None when there is none or (with ``fingerprint``) when
    it belongs to another configuration. Raises CheckpointError, naming the file, when the file
    cannot be read, holds anything but tensors and plain values, or is not a skelrep checkpoint."""
    path = checkpoint_path(ckpt_dir)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(path, f"refused: it holds objects other than tensors and plain values "
                                    f"({_unpickling_reason(exc)}); delete it to train from scratch") from None
    except Exception as exc:  # truncated / corrupt zip, empty file, I/O error
        raise CheckpointError(path, f"cannot be read, truncated or corrupt ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else 'no data'}); "
                                    f"delete it to train from scratch") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(path, f"not a skelrep resume checkpoint (format {found!r}, expected {FORMAT!r}); "
                                    f"delete it to train from scratch")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        log.warning("ignoring the resume checkpoint %s (epoch %s): it belongs to another configuration "
                    "(fingerprint %s, this run %s); training from scratch", path, state.get("epoch"),
                    state.get("fingerprint"), fingerprint)
        return None
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(path, f"incomplete resume checkpoint (no {', '.join(missing)}); "
                                    f"delete it to train from scratch")
    return state


def clear_checkpoint(ckpt_dir: str | os.PathLike) -> None:
    """Delete the resume state of a completed run. The checkpoint goes first, in one atomic unlink
    (from then on the next run starts from scratch), then leftovers of interrupted saves and the
    folder if it is empty; nothing else in the folder is touched."""
    ckpt_dir = Path(ckpt_dir)
    with contextlib.suppress(FileNotFoundError):
        checkpoint_path(ckpt_dir).unlink()
    for leftover in ckpt_dir.glob(f".{CKPT_NAME}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    with contextlib.suppress(OSError):
        ckpt_dir.rmdir()


def _unpickling_reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        if "unsupported" in line.lower() or "global" in line.lower():
            return line
    return lines[-1] if lines else type(exc).__name__
