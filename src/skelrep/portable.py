"""CPU-portable float64 arithmetic: the same bits on every x86-64 and ARM CPU.

numpy and torch choose kernels per CPU at run time. Measured on this project's data code
(numpy 2.4, OpenBLAS 0.3.31): ``np.exp``/``np.log``/``np.arctan2``/``np.power`` run SVML
kernels on AVX-512 CPUs and other code elsewhere (1-ulp differences), ``@``/``np.dot``/
``np.linalg.norm`` of a vector go through OpenBLAS, whose kernels differ per CPU family (FMA
or not), and numpy's ``Generator.normal``/``poisson`` call libm, which glibc also dispatches
per CPU. A 1-ulp difference flips a printed digit or a float32 rounding now and then, so the
data stages wrote different bytes on different machines.

What *is* identical everywhere is IEEE 754 basic arithmetic: ``+ - * /`` and ``sqrt`` are
correctly rounded, so every SIMD width gives the same result for the same operands, and an
explicit sequence of numpy element-wise operations cannot be fused or reordered. This module
builds everything the data code needs from those operations only:

- ``sin``, ``cos``, ``exp``, ``log``, ``atan``, ``atan2``: fdlibm's algorithms (range
  reduction + minimax polynomials, about 1 ulp), evaluated as numpy element-wise operations;
- ``matmul``, ``apply``, ``dot``, ``norm``: small matrix/vector products summed in a fixed
  order, never through BLAS;
- ``uniform``, ``normal``, ``log_uniform``, ``poisson``: draws built from the generator's
  raw doubles (``Generator.random``: a 53-bit integer times 2**-53, exact), never from
  numpy's distribution code.

Integer draws (``integers``, ``choice``, ``permutation``) are integer arithmetic and portable
as they are. Reductions (``sum``/``mean``) use numpy's fixed pairwise order, which does not
depend on the CPU. ``tests/test_portable.py`` checks the functions against numpy within
1e-15 and, in a subprocess with numpy's SIMD dispatch and OpenBLAS restricted, that the
bits do not change.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------- sin / cos
# pi/2 split in three parts (33 + 33 + 53 bits, fdlibm): k * _PIO2_1 and k * _PIO2_2 are
# exact for |k| < 2**20, so the reduction keeps ~100 bits of pi/2.
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_2T = 2.02226624879595063154e-21
_INVPIO2 = 6.36619772367581382433e-01
_MAX_TRIG_ARG = 2.0**19 * 1.5707963267948966  # beyond this the 3-part reduction loses bits

_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)


def _poly(z: np.ndarray, coeffs: tuple[float, ...]) -> np.ndarray:
    """Horner: c0 + z*(c1 + z*(c2 + ...))."""
    acc = np.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * z + c
    return acc


def _reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x = k * pi/2 + y`` with ``|y| <= pi/4``: returns (y, k mod 4)."""
    if x.size and not np.all(np.abs(x) <= _MAX_TRIG_ARG):
        raise ValueError(f"portable sin/cos: argument outside +-{_MAX_TRIG_ARG:.0f} (or not finite)")
    k = np.rint(x * _INVPIO2)
    y = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_2T
    return y, k.astype(np.int64) & 3


def _kernel_sin(y: np.ndarray) -> np.ndarray:
    z = y * y
    return y + (y * z) * _poly(z, _S)


def _kernel_cos(y: np.ndarray) -> np.ndarray:
    z = y * y
    hz = 0.5 * z
    w = 1.0 - hz
    return w + (((1.0 - w) - hz) + (z * z) * _poly(z, _C))


def sin_cos(x) -> tuple[np.ndarray, np.ndarray]:
    """``(sin(x), cos(x))`` of a float64 array (one shared range reduction)."""
    x = np.asarray(x, dtype=np.float64)
    y, quadrant = _reduce(x)
    ks, kc = _kernel_sin(y), _kernel_cos(y)
    sin = np.choose(quadrant, (ks, kc, -ks, -kc))
    cos = np.choose(quadrant, (kc, -ks, -kc, ks))
    return sin, cos


def sin(x) -> np.ndarray:
    return sin_cos(x)[0]


def cos(x) -> np.ndarray:
    return sin_cos(x)[1]


# ---------------------------------------------------------------------------- exp / log
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INVLN2 = 1.44269504088896338700e00
_EXP_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
          -1.65339022054652515390e-06, 4.13813679705723846039e-08)
_EXP_MAX, _EXP_MIN = 709.782712893383973096, -745.13321910194110842


def exp(x) -> np.ndarray:
    """e**x (fdlibm ``__ieee754_exp``); inf above ~709.78, 0 below ~-745.13."""
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("portable exp: NaN argument")
    xc = np.clip(x, -740.0, 709.0)
    k = np.rint(xc * _INVLN2)
    hi = xc - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * _poly(t, _EXP_P)
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    out = np.ldexp(y, k.astype(np.int64))
    out = np.where(x > _EXP_MAX, np.inf, out)
    return np.where(x < _EXP_MIN, 0.0, out)


_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)
_SQRT2_HALF = 0.70710678118654752440


def log(x) -> np.ndarray:
    """Natural logarithm of positive finite numbers (fdlibm ``__ieee754_log``)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size and not (np.all(x > 0.0) and np.all(np.isfinite(x))):
        raise ValueError("portable log: arguments must be positive and finite")
    m, e = np.frexp(x)  # x = m * 2**e, m in [0.5, 1): exact
    small = m < _SQRT2_HALF
    m = np.where(small, m * 2.0, m)
    k = (e - small).astype(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    t2 = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    r = t2 + t1
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


# ---------------------------------------------------------------------------- atan / atan2
_ATAN_HI = (4.63647609000806093515e-01, 7.85398163397448278999e-01, 9.82793723247329054082e-01,
            1.57079632679489655800e00)
_ATAN_LO = (2.26987774529616870924e-17, 3.06161699786838301793e-17, 1.39033110312309984516e-17,
            6.12323399573676603587e-17)
_AT_EVEN = (3.33333333333329318027e-01, 1.42857142725034663711e-01, 9.09088713343650656196e-02,
            6.66107313738753120669e-02, 4.97687799461593236017e-02, 1.62858201153657823623e-02)
_AT_ODD = (-1.99999999998764832476e-01, -1.11111104054623557880e-01, -7.69187620504482999495e-02,
           -5.83357013379057348645e-02, -3.65315727442169155270e-02)
_PI = 3.14159265358979311600e00
_PI_LO = 1.2246467991473531772e-16


def atan(x) -> np.ndarray:
    """Arc tangent (fdlibm ``atan``: four argument intervals, then an odd polynomial)."""
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("portable atan: NaN argument")
    ax = np.abs(x)
    band = np.searchsorted(np.array([0.4375, 0.6875, 1.1875, 2.4375]), ax, side="right") - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        reduced = np.choose(band + 1, (
            ax, (2.0 * ax - 1.0) / (2.0 + ax), (ax - 1.0) / (ax + 1.0),
            (ax - 1.5) / (1.0 + 1.5 * ax), -1.0 / ax))
    z = reduced * reduced
    w = z * z
    s1 = z * _poly(w, _AT_EVEN)
    s2 = w * _poly(w, _AT_ODD)
    near_zero = ax - ax * (s1 + s2)
    idx = np.maximum(band, 0)
    hi, lo = np.asarray(_ATAN_HI)[idx], np.asarray(_ATAN_LO)[idx]
    banded = hi - ((reduced * (s1 + s2) - lo) - reduced)
    out = np.where(band < 0, near_zero, banded)
    return np.where(x < 0, -out, out)


def atan2(y, x) -> np.ndarray:
    """Angle of the point (x, y) in (-pi, pi]."""
    y, x = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        base = atan(np.where(x != 0.0, y / np.where(x != 0.0, x, 1.0), 0.0))
    half_pi = 0.5 * _PI + 0.5 * _PI_LO
    shifted = np.where(y >= 0.0, base + _PI, base - _PI)
    out = np.where(x > 0.0, base, shifted)
    return np.where(x == 0.0, np.where(y > 0.0, half_pi, np.where(y < 0.0, -half_pi, 0.0)), out)


# ---------------------------------------------------------------------------- linear algebra
def matmul(a, b) -> np.ndarray:
    """``a @ b`` for stacks of small matrices ``(..., n, m) @ (..., m, p)``, summed in order."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = a[..., :, 0, None] * b[..., None, 0, :]
    for j in range(1, a.shape[-1]):
        out = out + a[..., :, j, None] * b[..., None, j, :]
    return out


def apply(matrix, points) -> np.ndarray:
    """``points @ matrix.T``: the linear map ``matrix`` (..., n, m) applied to vectors (..., m)."""
    matrix, points = np.asarray(matrix, dtype=np.float64), np.asarray(points, dtype=np.float64)
    out = matrix[..., :, 0] * points[..., 0, None]
    for j in range(1, matrix.shape[-1]):
        out = out + matrix[..., :, j] * points[..., j, None]
    return out


def dot(a, b) -> np.ndarray:
    """Inner product over the last axis, summed in order."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = a[..., 0] * b[..., 0]
    for j in range(1, a.shape[-1]):
        out = out + a[..., j] * b[..., j]
    return out


def norm(a, keepdims: bool = False) -> np.ndarray:
    """Euclidean norm over the last axis."""
    out = np.sqrt(dot(a, a))
    return out[..., None] if keepdims else out


def cross(a, b) -> np.ndarray:
    """Cross product of 3-vectors (..., 3)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def interp(x, xp, fp) -> np.ndarray:
    """``np.interp``: piecewise-linear ``fp(xp)`` at ``x`` (``xp`` increasing), clamped at the
    ends, as an explicit ``fp[j] + (x - xp[j]) * slope`` (never a fused multiply-add)."""
    x, xp, fp = (np.asarray(a, dtype=np.float64) for a in (x, xp, fp))
    if len(xp) == 1:
        return np.full_like(x, fp[0])
    j = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, len(xp) - 2)
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    out = fp[j] + (x - xp[j]) * slope
    return np.where(x <= xp[0], fp[0], np.where(x >= xp[-1], fp[-1], out))


# ---------------------------------------------------------------------------- random draws
def uniform(rng: np.random.Generator, low=0.0, high=1.0, size=None):
    """U[low, high): ``low + (high - low) * u`` with the generator's exact 53-bit ``u``."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if size is None:
        size = np.broadcast_shapes(low.shape, high.shape)
    out = low + (high - low) * rng.random(size)
    return float(out) if np.ndim(out) == 0 else out


def normal(rng: np.random.Generator, loc=0.0, scale=1.0, size=None):
    """Gaussian draws by the Box-Muller transform of the generator's raw doubles."""
    shape = np.broadcast_shapes(np.shape(loc), np.shape(scale)) if size is None else size
    n = int(np.prod(shape, dtype=np.int64))
    pairs = (n + 1) // 2
    u1 = 1.0 - rng.random(pairs)  # (0, 1]: log is finite
    u2 = rng.random(pairs)
    radius = np.sqrt(-2.0 * log(u1))
    s, c = sin_cos((2.0 * _PI) * u2)
    z = np.concatenate([radius * c, radius * s])[:n].reshape(shape)
    out = np.asarray(loc, dtype=np.float64) + np.asarray(scale, dtype=np.float64) * z
    return float(out) if np.ndim(out) == 0 else out


def log_uniform(rng: np.random.Generator, low: float, high: float, size=None):
    """Draws spread evenly in ratio between ``low`` and ``high`` (> 0)."""
    out = exp(uniform(rng, log(low), log(high), size))
    return float(out) if np.ndim(out) == 0 else out


_POISSON_CHUNK = 16.0  # exp(-16) is far from underflow; larger means are split into chunks


def poisson(rng: np.random.Generator, lam: float) -> int:
    """One Poisson(lam) draw: Knuth's product of uniforms, in chunks of mean <= 16."""
    if not lam >= 0.0 or not np.isfinite(lam):
        raise ValueError(f"poisson mean must be finite and >= 0, got {lam}")
    total, remaining = 0, float(lam)
    while remaining > 0.0:
        chunk = min(remaining, _POISSON_CHUNK)
        remaining -= chunk
        threshold = float(exp(-chunk))
        product = rng.random()
        while product > threshold:
            total += 1
            product *= rng.random()
    return total


class Generator:
    """A ``numpy.random.Generator`` whose float draws are portable (see the module doc).

    The draw methods the data code uses keep numpy's names and signatures; ``integers``,
    ``choice`` and ``permutation`` are numpy's own (integer arithmetic).
    """

    def __init__(self, seed) -> None:
        self.bit_generator = np.random.default_rng(seed)

    def random(self, size=None):
        return self.bit_generator.random(size)

    def integers(self, *args, **kwargs):
        return self.bit_generator.integers(*args, **kwargs)

    def choice(self, a, size=None, replace: bool = True):
        if np.ndim(a) == 0:
            return self.bit_generator.choice(a, size=size, replace=replace)
        options = np.asarray(a)
        return options[self.bit_generator.choice(len(options), size=size, replace=replace)]

    def permutation(self, x):
        return self.bit_generator.permutation(x)

    def uniform(self, low=0.0, high=1.0, size=None):
        return uniform(self.bit_generator, low, high, size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return normal(self.bit_generator, loc, scale, size)

    def log_uniform(self, low: float, high: float, size=None):
        return log_uniform(self.bit_generator, low, high, size)

    def poisson(self, lam: float) -> int:
        return poisson(self.bit_generator, lam)


# ---------------------------------------------------------------------------- kernel selection
def numpy_simd_targets() -> list[str]:
    """numpy's run-time SIMD targets that this CPU uses (e.g. ``X86_V3``, ``AVX512_ICL``)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def baseline_kernel_env(machine: str) -> dict[str, str]:
    """Environment variables that make numpy, OpenBLAS, MKL, oneDNN and ATen run the kernels an
    older or ARM CPU would run (no SIMD targets, no FMA): what the cross-CPU test and benchmark
    compare against. ``machine`` is ``platform.machine()``."""
    env = {"ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": " ".join(numpy_simd_targets())}
    if machine in ("x86_64", "AMD64"):
        env.update(OPENBLAS_CORETYPE="Prescott", MKL_ENABLE_INSTRUCTIONS="SSE4_2", ONEDNN_MAX_CPU_ISA="SSE41")
    return env
