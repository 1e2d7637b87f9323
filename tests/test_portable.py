"""skelrep.portable: accurate, IEEE-basic-operation-only maths, and the data code uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from skelrep import portable

SRC = Path(__file__).resolve().parents[1] / "src" / "skelrep"


def _ulps(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.spacing(np.maximum(np.abs(want), np.finfo(float).tiny))))


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(7)


def test_trig_within_two_ulps_of_numpy(rng):
    x = np.concatenate([rng.uniform(-60, 60, 50_000), [0.0, -0.0, np.pi / 4, np.pi / 2, np.pi, 1e-300]])
    s, c = portable.sin_cos(x)
    assert _ulps(s, np.sin(x)) <= 2 and _ulps(c, np.cos(x)) <= 2
    np.testing.assert_array_equal(portable.sin(x), s)
    np.testing.assert_array_equal(portable.cos(x), c)


def test_exp_log_within_two_ulps_and_edge_values(rng):
    x = rng.uniform(-700, 700, 50_000)
    assert _ulps(portable.exp(x), np.exp(x)) <= 2
    y = np.exp(rng.uniform(-700, 700, 50_000))
    assert _ulps(portable.log(y), np.log(y)) <= 2
    np.testing.assert_array_equal(portable.exp([0.0, -800.0, 800.0]), [1.0, 0.0, np.inf])
    assert portable.log(1.0) == 0.0


def test_atan_and_atan2_match_numpy(rng):
    x = rng.normal(size=50_000) * np.exp(rng.uniform(-12, 12, 50_000))
    assert _ulps(portable.atan(x), np.arctan(x)) <= 2
    y, z = rng.normal(size=20_000), rng.normal(size=20_000)
    assert _ulps(portable.atan2(y, z), np.arctan2(y, z)) <= 2
    special = [(0.0, 1.0), (1.0, 0.0), (-1.0, 0.0), (0.0, -1.0), (-0.5, -0.5)]
    for a, b in special:
        assert portable.atan2(a, b) == pytest.approx(np.arctan2(a, b), abs=1e-15)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="positive"):
        portable.log([1.0, 0.0])
    with pytest.raises(ValueError, match="argument outside"):
        portable.sin(1e7)
    with pytest.raises(ValueError, match="NaN"):
        portable.exp(np.nan)
    with pytest.raises(ValueError, match="poisson"):
        portable.poisson(np.random.default_rng(0), -1.0)


def test_small_linear_algebra_matches_numpy(rng):
    a, b = rng.normal(size=(50, 7, 3, 3)), rng.normal(size=(50, 7, 3, 3))
    np.testing.assert_allclose(portable.matmul(a, b), a @ b, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(portable.matmul(a[0, 0], b), a[0, 0] @ b, rtol=1e-14, atol=1e-14)
    points = rng.normal(size=(4, 20, 25, 3))
    np.testing.assert_allclose(portable.apply(a[0, 0], points), points @ a[0, 0].T, rtol=1e-14, atol=1e-14)
    v, w = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    np.testing.assert_allclose(portable.dot(v, w), np.einsum("ij,ij->i", v, w), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(portable.norm(v), np.linalg.norm(v, axis=-1), rtol=1e-15)
    np.testing.assert_allclose(portable.cross(v, w), np.cross(v, w), rtol=1e-14, atol=1e-14)


def test_interp_matches_numpy(rng):
    xp = np.sort(rng.choice(200, 30, replace=False)).astype(float)
    fp = rng.normal(size=30)
    x = np.arange(-3, 205, dtype=float)
    np.testing.assert_allclose(portable.interp(x, xp, fp), np.interp(x, xp, fp), rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(portable.interp([0.0, 5.0], [2.0], [7.0]), [7.0, 7.0])


def test_generator_draws_have_the_right_laws():
    gen = portable.Generator(3)
    u = gen.uniform(-2.0, 5.0, 200_000)
    assert u.min() >= -2.0 and u.max() < 5.0 and abs(u.mean() - 1.5) < 0.02
    z = gen.normal(1.0, 2.0, (400, 500))
    assert z.shape == (400, 500) and abs(z.mean() - 1.0) < 0.02 and abs(z.std() - 2.0) < 0.02
    assert isinstance(gen.normal(0.0, 1.0), float) and isinstance(gen.uniform(0.0, 1.0), float)
    lu = gen.log_uniform(0.5, 2.0, 100_000)
    assert lu.min() >= 0.5 and lu.max() <= 2.0 and abs(np.mean(np.log(lu))) < 0.01
    for lam in (0.0, 2.5, 45.0):
        draws = [gen.poisson(lam) for _ in range(4000)]
        assert abs(np.mean(draws) - lam) < 0.05 + 4 * np.sqrt(lam / 4000)
        assert abs(np.var(draws) - lam) < 0.1 + 0.15 * lam


def test_generator_integer_draws_are_numpys():
    ours, theirs = portable.Generator(11), np.random.default_rng(11)
    options = (5, 6, 7, 9, 13)
    np.testing.assert_array_equal(ours.integers(0, 10, 20), theirs.integers(0, 10, 20))
    np.testing.assert_array_equal(ours.choice(options, 3, replace=False), theirs.choice(options, 3, replace=False))
    np.testing.assert_array_equal(ours.permutation(9), theirs.permutation(9))
    np.testing.assert_array_equal(ours.random(4), theirs.random(4))


def test_same_seed_same_bits():
    a, b = portable.Generator(5), portable.Generator(5)
    np.testing.assert_array_equal(a.normal(size=1001), b.normal(size=1001))
    np.testing.assert_array_equal(a.log_uniform(0.7, 1.4, 9), b.log_uniform(0.7, 1.4, 9))


# ---------------------------------------------------------------- the data code stays portable
# Modules whose arithmetic ends up in data-stage outputs (download, preprocess) and in the
# random initialisation. Training-time code (augmentations, models' forward) is not listed:
# its results are compared across machines by tolerance, not by bytes.
PORTABLE_MODULES = sorted(
    [p for p in (SRC / "data").rglob("*.py") if p.name not in ("augment.py", "dataset.py")]
    + [SRC / "models" / "init.py"])

# numpy functions whose result depends on the CPU's SIMD dispatch, libm or BLAS.
FORBIDDEN = {
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh",
    "arccosh", "arctanh", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp",
    "power", "float_power", "cbrt", "hypot", "deg2rad", "rad2deg", "radians", "degrees", "dot",
    "vdot", "inner", "outer", "matmul", "einsum", "tensordot", "kron", "cross", "default_rng",
    "standard_normal", "normal", "poisson", "exponential", "gamma", "beta", "lognormal",
}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            found.append(f"line {node.lineno}: '@' (BLAS)")
        elif isinstance(node, ast.Attribute):
            base = node.value
            chain = []
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            root = base.id if isinstance(base, ast.Name) else ""
            if root == "np" and (node.attr in FORBIDDEN or "linalg" in chain):
                found.append(f"line {node.lineno}: np.{'.'.join(reversed(chain))}{'.' if chain else ''}{node.attr}")
    return found


@pytest.mark.parametrize("path", PORTABLE_MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_data_modules_use_only_portable_arithmetic(path):
    bad = _violations(path)
    assert not bad, (f"{path.relative_to(SRC)} uses CPU-dependent numpy maths (use skelrep.portable): "
                     + "; ".join(bad))


def test_the_lint_sees_violations(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import numpy as np\nx = np.exp(1.0)\ny = np.linalg.norm([1.0])\nz = a @ b\n"
                      "r = np.random.default_rng(0)\nok = np.sqrt(2.0) + np.sum([1.0])\n")
    assert sorted(v.split(":")[0] for v in _violations(sample)) == ["line 2", "line 3", "line 4", "line 5"]
