"""The encoder file: the pretrained backbone every downstream stage reads.

A ``torch.save`` of a plain dict::

    {"format": "skelrep-encoder/1", "method": str, "arch": str, "config": dict,
     "state_dict": {name: tensor}, "extra": dict}

``config`` holds the backbone constructor arguments. Only plain data is stored, so the
file loads with ``weights_only=True``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from skelrep.errors import DataError
from skelrep.io import remove_stale_temps

ENCODER_FORMAT = "skelrep-encoder/1"
_REQUIRED = {"format": str, "method": str, "arch": str, "config": dict, "state_dict": dict, "extra": dict}


def _check_plain(value: Any, where: str) -> None:
    """Reject objects that ``torch.load(weights_only=True)`` would refuse later."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise TypeError(f"{where}: {type(value).__name__} is not plain data")


def save_encoder(
    path: str | os.PathLike,
    *,
    method: str,
    arch: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, Tensor],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write an encoder file atomically.

    ``torch.save`` names the zip's top folder after the file stem, so the bytes depend on
    the file name. We therefore save under the final name inside a temporary directory on
    the same file system and then rename it into place: same bytes as a direct save, and
    no half-written file under ``path`` if we are killed.
    """
    config, extra = dict(config), dict(extra or {})
    _check_plain(config, "config")
    _check_plain(extra, "extra")
    payload = {
        "format": ENCODER_FORMAT,
        "method": method,
        "arch": arch,
        "config": config,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        "extra": extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)  # what a killed earlier save left behind
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp_file = tmp_dir / path.name
        torch.save(payload, tmp_file)
        os.replace(tmp_file, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def load_encoder_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check an encoder file (on CPU, ``weights_only=True``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "encoder file not found") from None
    except Exception as exc:  # torch raises several types for non-torch / unsafe files
        raise DataError(path, f"not a readable encoder file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise DataError(path, f"not an encoder file: expected format {ENCODER_FORMAT!r}, found {found!r}")
    for key, kind in _REQUIRED.items():
        if not isinstance(payload.get(key), kind):
            raise DataError(path, f"encoder file field {key!r} missing or not a {kind.__name__}")
    return payload
