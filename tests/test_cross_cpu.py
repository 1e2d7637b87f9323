"""The data stages and the random-init baseline give the same bytes on any CPU.

numpy, OpenBLAS and ATen pick kernels per CPU at run time; a data byte that depends on that
choice differs between machines (it did: download@ntu120 and every encoder_random.pt). Here
the small-scale digests of ``tests/cross_cpu_digests.py`` must equal the recorded ones,
natively and with the dispatch forced down to the baseline kernels: numpy without its SIMD
targets (``NPY_DISABLE_CPU_FEATURES``), OpenBLAS on its oldest x86-64 kernels (no FMA), MKL and
oneDNN on SSE, and ATen on its ``default`` (non-vectorised) capability, as on an older or ARM
CPU.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from skelrep.portable import baseline_kernel_env
from tests import cross_cpu_digests

RECORDED = json.loads(cross_cpu_digests.GOLDEN.read_text())


def _restricted_env() -> dict[str, str]:
    return {**os.environ, **baseline_kernel_env(platform.machine())}


def _digests_in_subprocess(env: dict[str, str]) -> dict[str, str]:
    script = Path(cross_cpu_digests.__file__)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         cwd=script.parents[1], timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mismatches(got: dict[str, str]) -> list[str]:
    return [f"{k}: recorded {RECORDED.get(k, '-')[:12]}, got {got.get(k, '-')[:12]}"
            for k in sorted(set(RECORDED) | set(got)) if RECORDED.get(k) != got.get(k)]


@pytest.fixture(scope="module")
def native() -> dict[str, str]:
    return cross_cpu_digests.all_digests()


def test_native_bytes_equal_the_recorded_digests(native):
    assert not _mismatches(native), (
        "data or init bytes changed: if intended, re-record with "
        "`python tests/cross_cpu_digests.py --update`; if not, something CPU- or "
        f"version-dependent entered the data path: {_mismatches(native)}")


def test_restricted_cpu_dispatch_gives_the_same_bytes(native):
    env = _restricted_env()
    restricted = _digests_in_subprocess(env)
    assert restricted == native, (
        f"bytes depend on the CPU kernels ({env.get('NPY_DISABLE_CPU_FEATURES')!r}, "
        f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE')}, ATEN_CPU_CAPABILITY=default): "
        f"{[k for k in native if native[k] != restricted.get(k)]}")


def test_the_restriction_is_real():
    """The restricted environment does change CPU-dependent results (else the test above
    would prove nothing): numpy's exp and a float32 random fill of torch."""
    probe = ("import hashlib, numpy as np, torch; torch.manual_seed(0); "
             "x = np.linspace(-5, 5, 100001); w = torch.empty(4096).uniform_(-1, 1); "
             "print(hashlib.sha256(np.exp(x).tobytes() + w.numpy().tobytes()).hexdigest())")
    def run(env):
        return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                              check=True).stdout

    import torch
    if (platform.machine() not in ("x86_64", "AMD64")
            or torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512")):
        pytest.skip("the restricted kernels equal the native ones on this CPU")
    assert run(dict(os.environ)) != run(_restricted_env())
