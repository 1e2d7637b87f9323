"""Full training checkpoints (for resume) written atomically.

``torch.save`` bytes depend on the file name (the zip's top folder is the stem), so the
checkpoint is saved under its final name inside a temporary folder and then moved.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_NAME = "checkpoint.pt"


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
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(ckpt_dir: str | os.PathLike, state: dict) -> Path:
    path = Path(ckpt_dir) / CKPT_NAME
    save_torch_atomic(state, path)
    return path


def load_checkpoint(ckpt_dir: str | os.PathLike, map_location="cpu") -> dict | None:
    path = Path(ckpt_dir) / CKPT_NAME
    if not path.exists():
        return None
    # Our own file: it holds RNG states (numpy arrays, python tuples), so full unpickling.
    return torch.load(path, map_location=map_location, weights_only=False)
