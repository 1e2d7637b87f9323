"""Seeded model initialisation that gives the same weights on every CPU.

PyTorch's CPU random fills are not portable: ``uniform_`` and ``normal_`` run different
kernels per ATen CPU capability (the AVX2/AVX-512 builds contract ``a * u + b`` into an FMA
and use a vectorised Box-Muller), and ``trunc_normal_`` goes through ``erfinv_``, a
vectorised polynomial. Measured here: every ``trunc_normal_``/``uniform_``-initialised
tensor of the three methods differs between ``ATEN_CPU_CAPABILITY=default`` (what an ARM CPU
runs) and ``avx2``; the random-init baseline encoders therefore differed between machines.

``portable_init(seed)`` builds a model with the module code unchanged (PyTorch's default
initialisers and the models' own ``nn.init`` calls) but routes every random fill to
``skelrep.portable`` draws from one seeded stream, made in construction order: the same
distributions, the same bits everywhere. A random op it does not know how to make portable
raises instead of silently depending on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from skelrep import portable

# Tensor methods and functions a model constructor may not use under portable_init: their
# CPU kernels differ per machine and there is no portable replacement here.
_UNSUPPORTED_METHODS = ("erfinv_", "exponential_", "cauchy_", "log_normal_", "geometric_", "bernoulli_")
_UNSUPPORTED_FUNCTIONS = ("normal", "randn_like", "rand_like", "bernoulli", "multinomial")
_UNSUPPORTED_INIT = ("orthogonal_", "sparse_")


def _fill(tensor: torch.Tensor, values: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        tensor.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(tensor.dtype))
    return tensor


def _trunc_normal(rng: portable.Generator, shape, mean: float, std: float, a: float, b: float) -> np.ndarray:
    """N(mean, std) restricted to [a, b] by redrawing the values outside (same law as
    PyTorch's inverse-CDF sampler)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    values = np.asarray(rng.normal(mean, std, shape), dtype=np.float64)
    for _ in range(1000):
        outside = (values < a) | (values > b)
        if not outside.any():
            return values
        values[outside] = rng.normal(mean, std, int(outside.sum()))
    raise ValueError(f"trunc_normal_: [{a}, {b}] holds almost none of N({mean}, {std}^2)")


@contextlib.contextmanager
def portable_init(seed: int) -> Iterator[portable.Generator]:
    """Within the block, random tensor fills draw from a portable stream seeded by ``seed``.

    Patches ``Tensor.uniform_``/``normal_``, ``torch.rand``/``randn`` and
    ``nn.init.trunc_normal_`` (everything nn.init's initialisers and PyTorch's default module
    initialisation call), and makes the non-portable random ops raise. Not thread-safe:
    meant for building a model in the main thread.
    """
    rng = portable.Generator(np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(b"model-init")]))

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        return _fill(self, rng.uniform(float(a), float(b), tuple(self.shape)))

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        return _fill(self, rng.normal(float(mean), float(std), tuple(self.shape)))

    def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
        return _fill(tensor, _trunc_normal(rng, tuple(tensor.shape), mean, std, a, b))

    def new_tensor(draw):
        def make(*size, generator=None, dtype=None, device=None, requires_grad=False, **kwargs):
            if kwargs:
                raise NotImplementedError(f"portable_init: unsupported arguments {sorted(kwargs)}")
            shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
            out = torch.empty(shape, dtype=dtype or torch.get_default_dtype(), device=device)
            return _fill(out, draw(shape)).requires_grad_(requires_grad)
        return make

    def refuse(name):
        def fail(*args, **kwargs):
            raise RuntimeError(f"{name} is not CPU-portable; a model built under portable_init "
                               "may only use uniform/normal/trunc_normal random fills")
        return fail

    patches = [(torch.Tensor, "uniform_", uniform_), (torch.Tensor, "normal_", normal_),
               (nn.init, "trunc_normal_", trunc_normal_),
               (torch, "rand", new_tensor(lambda shape: rng.uniform(0.0, 1.0, shape))),
               (torch, "randn", new_tensor(lambda shape: rng.normal(0.0, 1.0, shape)))]
    patches += [(torch.Tensor, name, refuse(f"Tensor.{name}")) for name in _UNSUPPORTED_METHODS]
    patches += [(torch, name, refuse(f"torch.{name}")) for name in _UNSUPPORTED_FUNCTIONS]
    patches += [(nn.init, name, refuse(f"nn.init.{name}")) for name in _UNSUPPORTED_INIT]
    # (owner, name, own attribute or None when inherited, e.g. Tensor methods of TensorBase)
    saved = [(owner, name, vars(owner).get(name)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield rng
    finally:
        for owner, name, original in saved:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def unit_rows(rows: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm, computed in float64 in a fixed order (portable), e.g.
    for a randomly initialised MoCo queue. Meta tensors (shape-only models) pass through."""
    if rows.is_meta:
        return rows
    values = rows.detach().cpu().numpy().astype(np.float64)
    norms = np.maximum(portable.norm(values, keepdims=True), math.ulp(0.0))
    return torch.from_numpy(values / norms).to(rows.dtype)
