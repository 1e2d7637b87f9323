"""The download stage: produce ``data/raw/<dataset>/`` (archives as distributed + manifest).

``synthetic`` runs the built-in generator (same seed, same bytes); ``official`` fetches the
archives the user names (local path or URL, optional sha256). Partial downloads are kept in
``data/.download-cache/`` (not a DVC output, so DVC never deletes them) and resume there.
``generic`` (every dataset other than the four built-in ones) copies the user's folder, or
unpacks their zip, into ``data/raw/<dataset>/dataset/`` after checking ``labels.csv`` against
the arrays and the dataset's split rule, and writes the resolved skeleton layout next to it
(``layout.yaml``), so the raw folder holds everything preprocessing reads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..catalog import DATASETS
from ..errors import ParamsError
from ..schema import choice, integer, options, validate
from .archive import open_archive
from .download import ArchiveSpec, fetch, parse_archive_specs, write_manifest
from .generic import DATASET_DIR, LAYOUT_FILE, GenericConfig, assign_splits, copy_dataset, read_generic_index
from .layout import layout_yaml
from .protocols import check_dataset_name


def _synthetic_config_class(dataset: str):
    from .synthetic.config import SyntheticNTUConfig, SyntheticPKUConfig  # not the writers: see synthetic/

    return SyntheticNTUConfig if DATASETS[dataset].format == "ntu" else SyntheticPKUConfig


def validate_data_section(dataset: str, section: Any) -> dict:
    """``data.<dataset>``: a built-in dataset (synthetic | official) or the user's own (generic).

    ``base`` is the raw folder the dataset builds on, which dvc.yaml makes a dep of its
    preprocessing: ``ntu60`` for NTU-120 (the NTU-60 archive + the extension), the dataset
    itself for every other.
    """
    prefix = f"data.{dataset}"
    if dataset not in DATASETS:
        return _validate_generic_section(dataset, section, prefix)
    if isinstance(section, Mapping) and section.get("source") == "generic":
        raise ParamsError(f"{prefix}.source", f"{dataset} is a built-in benchmark dataset (synthetic | "
                          "official); give your own data another name: data.<name> with source: generic")
    # ``synthetic`` holds the generator's knobs: overrides of its documented defaults ({}: none)
    cfg = validate(section, {"source": choice("synthetic", "official"), "base": choice(DATASETS[dataset].base),
                             "seed": integer(0), "synthetic": options(_synthetic_config_class(dataset)),
                             "archives": lambda v, k: v}, prefix)
    cfg["archives"] = (parse_archive_specs(dataset, cfg["archives"] or [], f"{prefix}.archives")
                       if cfg["source"] == "official" else [])
    if cfg["source"] == "official" and not cfg["archives"]:
        raise ParamsError(f"{prefix}.archives", "source is 'official' but no archive is listed "
                          "(name, role, url and optional sha256 for each archive)")
    return cfg


def _validate_generic_section(dataset: str, section: Any, prefix: str) -> dict:
    check_dataset_name(dataset, prefix)
    if isinstance(section, Mapping) and section.get("source", "generic") != "generic":
        raise ParamsError(f"{prefix}.source", f"got {section['source']!r}; {dataset!r} is not a built-in "
                          f"dataset ({', '.join(DATASETS)}), so its source is 'generic' (your own data, "
                          "docs/custom_data.md)")
    return validate(section, {"source": choice("generic"), "base": choice(dataset),
                              "generic": lambda v, k: GenericConfig.from_params(v, k)}, prefix)


def download_dataset(dataset: str, cfg: dict, out_dir: Path, cache_dir: Path) -> Path:
    """Write ``out_dir`` atomically: build it next to the target, then rename."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if cfg["source"] == "synthetic":
            if DATASETS[dataset].format == "ntu":
                from .synthetic.ntu_writer import write_ntu_archives

                written = write_ntu_archives(tmp, dataset, cfg["synthetic"], seed=cfg["seed"])
            else:
                from .synthetic.pku_writer import write_pku_archives

                written = write_pku_archives(tmp, int(dataset[-1]), cfg["synthetic"], seed=cfg["seed"])
            specs = [ArchiveSpec(name=path.name, role=role, source=None) for path, role in written]
        elif cfg["source"] == "generic":
            specs = _copy_generic(dataset, cfg["generic"], tmp)
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


def _copy_generic(dataset: str, cfg: GenericConfig, out_dir: Path) -> list[ArchiveSpec]:
    """The user's dataset, checked (index and split rule) on the source, copied into ``out_dir``."""
    if not Path(cfg.root).exists():
        raise ParamsError(f"data.{dataset}.generic.root", f"{cfg.root!r} does not exist (a folder or .zip in "
                          "the generic format; a relative path starts at the repository root)")
    with open_archive(cfg.root) as archive:
        index = read_generic_index(archive)
        for name, rule in cfg.splits.items():
            assign_splits(index, rule, archive, key=f"data.{dataset}.generic.splits.{name}")
        copy_dataset(archive, out_dir / DATASET_DIR)
    (out_dir / LAYOUT_FILE).write_text(layout_yaml(cfg.layout), encoding="utf-8")
    return [ArchiveSpec(name=DATASET_DIR, role="skeleton", source=cfg.root),
            ArchiveSpec(name=LAYOUT_FILE, role="layout", source=None)]


def _link_or_copy(src: Path, dst: Path) -> None:
    # A hard link avoids a second copy of multi-GB archives when cache and output share a disk.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
