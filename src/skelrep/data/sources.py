"""The download stage: produce ``data/raw/<dataset>/`` (archives as distributed + manifest).

``synthetic`` runs the built-in generator (same seed, same bytes); ``official`` fetches the
archives the user names (local path or URL, optional sha256). Partial downloads are kept in
``data/.download-cache/`` (not a DVC output, so DVC never deletes them) and resume there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from ..errors import ParamsError
from ..params import DATASETS, choice, integer, validate
from . import synthetic
from .download import ArchiveSpec, fetch, parse_archive_specs, write_manifest


def dataclass_from_params(cls, section: dict, prefix: str):
    """Build a config dataclass from a params section; unknown keys name the allowed ones."""
    if not isinstance(section, dict):
        raise ParamsError(prefix, f"expected a mapping, got {section!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in section.items():
        if key not in fields:
            raise ParamsError(f"{prefix}.{key}", f"unknown key; allowed keys: {', '.join(fields)}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in section.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ParamsError(prefix, str(exc)) from None


def _synthetic_config_class(dataset: str):
    return synthetic.SyntheticNTUConfig if dataset.startswith("ntu") else synthetic.SyntheticPKUConfig


def validate_data_section(dataset: str, section: dict) -> dict:
    if dataset not in DATASETS:
        raise ParamsError("dataset", f"unknown dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
    prefix = f"data.{dataset}"
    cfg = validate(section, {"source": choice("synthetic", "official"), "seed": integer(0),
                             "synthetic": lambda v, k: v, "archives": lambda v, k: v}, prefix)
    cfg["synthetic"] = dataclass_from_params(_synthetic_config_class(dataset), cfg["synthetic"] or {},
                                             f"{prefix}.synthetic")
    cfg["archives"] = (parse_archive_specs(dataset, cfg["archives"] or [], f"{prefix}.archives")
                       if cfg["source"] == "official" else [])
    if cfg["source"] == "official" and not cfg["archives"]:
        raise ParamsError(f"{prefix}.archives", "source is 'official' but no archive is listed "
                          "(name, role, url and optional sha256 for each archive)")
    return cfg


def download_dataset(dataset: str, cfg: dict, out_dir: Path, cache_dir: Path) -> Path:
    """Write ``out_dir`` atomically: build it next to the target, then rename."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if cfg["source"] == "synthetic":
            if dataset.startswith("ntu"):
                written = synthetic.write_ntu_archives(tmp, dataset, cfg["synthetic"], seed=cfg["seed"])
            else:
                written = synthetic.write_pku_archives(tmp, int(dataset[-1]), cfg["synthetic"], seed=cfg["seed"])
            specs = [ArchiveSpec(name=path.name, role=role, source=None) for path, role in written]
        else:
            specs = cfg["archives"]
            cache_dir.mkdir(parents=True, exist_ok=True)
            for spec in specs:
                cached = fetch(spec.source, cache_dir / spec.name, sha256=spec.sha256)
                _link_or_copy(cached, tmp / spec.name)
        write_manifest(tmp, dataset, cfg["source"], specs)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _link_or_copy(src: Path, dst: Path) -> None:
    # A hard link avoids a second copy of multi-GB archives when cache and output share a disk.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
