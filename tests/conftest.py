"""Shared test helpers.

Real NTU / PKU-MMD sample files live in ../shared/fixtures (research-use only, never copied
into this repository); tests that need them skip cleanly when that folder is absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
REFERENCE = SHARED / "reference"

torch.set_num_threads(1)


def assert_close_to_scale(actual, expected, rel=1e-5):
    """Equivalence with a reference output: max abs error within ``rel`` x the output's scale."""
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= rel * scale, f"max abs error {err:.3g} exceeds {rel} x output scale {scale:.3g}"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} not available (expected under ../shared)")
    return path


@pytest.fixture
def ntu_fixture():
    """Return a function mapping a fixture file name to its path under ../shared/fixtures/ntu_rgbd."""
    return lambda name: _require(FIXTURES / "ntu_rgbd" / name)


@pytest.fixture
def pku_fixture():
    return lambda name: _require(FIXTURES / "pku_mmd" / name)


@pytest.fixture
def reference_file():
    return lambda name: _require(REFERENCE / name)


TINY_SPLIT = "xsub"  # the named split of write_tiny_h5's file


def write_tiny_h5(path: Path, n_train: int = 24, n_test: int = 12, frames: int = 40, classes: int = 4,
                  seed: int = 0, joints: int = 25, persons: int = 2) -> Path:
    """A small dataset file in the skelrep HDF5 layout: class-dependent sinusoid motions, one named
    split :data:`TINY_SPLIT` (``SkeletonH5Dataset(path, TINY_SPLIT, "train")``)."""
    import h5py
    import numpy as np

    from skelrep.data.hdf5 import SampleWriter, write_split

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        writer = SampleWriter(h5, (3, frames, joints, persons), ("performer",))
        subsets = {"train": [], "test": []}
        for split, n in (("train", n_train), ("test", n_test)):
            for i in range(n):
                label = i % classes
                length = int(rng.integers(frames // 2, frames + 1))
                t = np.arange(frames)[None, :, None, None]
                phase = rng.uniform(0, np.pi, size=(3, 1, joints, persons))
                joint = np.sin(2 * np.pi * (label + 1) * t / frames + phase).astype(np.float32)
                joint += 0.1 * rng.standard_normal(joint.shape).astype(np.float32)
                joint[:, length:] = 0
                subsets[split].append(writer.append(f"s{split}{i:04d}", joint, length, label, {"performer": i % 3}))
        writer.close()
        write_split(h5, TINY_SPLIT, subsets)
    return path


def params_section(name: str, overrides: dict | None = None) -> dict:
    """The committed ``params.yaml`` section ``name`` (every key present), with ``overrides``
    merged in recursively: a test names only the keys it changes."""
    import copy

    from skelrep.params import load_params

    def merge(base: dict, new: dict) -> dict:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict) and value:
                merge(base[key], value)
            else:
                base[key] = value
        return base

    return merge(copy.deepcopy(load_params(REPO_ROOT / "params.yaml")[name]), copy.deepcopy(overrides or {}))


def without(section: dict, dotted: str) -> dict:
    """``section`` with the key at ``dotted`` (relative to the section) removed."""
    *parents, leaf = dotted.split(".")
    node = section
    for part in parents:
        node = node[part]
    del node[leaf]
    return section


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """A migrated, empty MLflow database, created once per session (migrations take seconds):
    tests copy it into their own folder."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def use_mlflow_db(root: Path, template_db: Path, monkeypatch) -> Path:
    """Track into a copy of the migrated ``template_db`` at ``root/mlflow.db``, with ``root`` as
    the repository root (``DVC_ROOT``) and MLflow's telemetry off; returns the database path."""
    import shutil

    db = root / "mlflow.db"
    shutil.copy(template_db, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return db


@pytest.fixture(autouse=True)
def _no_mlflow_uri_from_an_earlier_test():
    """In-process ``stage_run`` sets MLflow's process-wide tracking URI (harmless in a pipeline,
    where each stage is its own process); a test must not read the last test's database through
    it. After each test the URI follows ``MLFLOW_TRACKING_URI`` again (unset: MLflow's default)."""
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI"))
