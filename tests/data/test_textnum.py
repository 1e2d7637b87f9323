"""The vectorised decimal reader: the same doubles as float(), token and line counts, and the
shapes it declines (the callers' line readers take those)."""

from __future__ import annotations

import numpy as np
import pytest

from skelrep.data.textnum import tokenize

EDGE_CASES = [
    "0", "-0", "+0", "-0.0", "0.000", "7", "+3", "-12", "1.5", "-2.25", "0.1", "0.2", "0.3",
    "9007199254740992", "9007199254740993", "9007199254740995", "18014398509481985",
    "12345678901234567890", "123456789012345678901234567890", "1234567890123456789012345678901234567890",
    "0.1234567890123456789", "1.00000000000000000000001", "0.00000000000000000000001",
    "00000000000000000000000001", "123456789.12345678", "99999999.99999999", "1e22", "1e23", "2e22",
    "5E22", "1e-22", "1e-23", "1.5e-7", "-1.25E+3", "1e400", "-1e400", "1e-400", "5e-324", "2.5e-324",
    "1.7976931348623157e308", "1.7976931348623159e308", "4.9406564584124654e-324", "1e00005",
    "1e-00003", "3E-0", "1.0e0", "-9.313226e-10", "0.0002059419", "1036.233", "-0.2059419", "277.419",
    "3.4028235e38", "3.4028236e38", "72057594037931101",
]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _check(text: bytes) -> None:
    tokens = tokenize(text)
    assert tokens is not None
    words = text.split()
    index = np.arange(len(words))
    assert len(tokens) == len(words)
    assert _same_bits(tokens.floats(index), np.array([float(w) for w in words]))
    perm = np.random.default_rng(len(words)).permutation(len(words))
    assert _same_bits(tokens.floats(perm.reshape(-1, 1)), np.array([float(w) for w in words])[perm].reshape(-1, 1))
    assert tokens.per_line.tolist() == [len(line.split()) for line in text.split(b"\n")]
    assert tokens.text(index) == [w.decode() for w in words]
    assert tokens.plain(index).tolist() == [w.isdigit() for w in words]
    assert tokens.integers(index).tolist() == [int(w) if w.isdigit() and len(w) <= 16 else -1 for w in words]


def test_edge_cases_equal_float():
    _check(" ".join(EDGE_CASES).encode())
    _check("\n".join(EDGE_CASES).encode() + b"\n")
    _check("\r\n".join(EDGE_CASES).encode())


@pytest.mark.parametrize("seed", range(4))
def test_random_decimals_equal_float(seed):
    """Decimals of every length and exponent the fast path reads, and some it hands to float()."""
    rng = np.random.default_rng(seed)
    words = []
    for _ in range(3000):
        sign = rng.choice(["", "-", "+"], p=[0.6, 0.35, 0.05])
        whole = "".join(map(str, rng.integers(0, 10, rng.integers(1, 12))))
        frac = "".join(map(str, rng.integers(0, 10, rng.integers(0, 14))))
        word = sign + whole + ("." + frac if frac else "")
        if rng.random() < 0.2:
            word += rng.choice(["e", "E"]) + rng.choice(["", "-", "+"]) + str(rng.integers(0, 40))
        words.append(word)
    lines, i = [], 0
    while i < len(words):
        n = int(rng.integers(0, 15))
        lines.append(rng.choice([" ", "  ", "\t"]).join(words[i:i + n]) + rng.choice(["", " ", "\r"]))
        i += n
    _check("\n".join(lines).encode())


def test_any_subset_of_tokens_reads_as_float():
    """floats() looks for long digit runs and exponents among the requested tokens only: a
    request without them, with only them, a mix and none give float()'s values."""
    words = EDGE_CASES + ["0.5", "-1.25", "33"] * 20
    tokens = tokenize(" ".join(words))
    expected = np.array([float(w) for w in words])
    long_or_exp = np.array([len(w.lstrip("+-").split("e")[0].split("E")[0].replace(".", "")) > 8 or "e" in w.lower()
                            for w in words])
    rng = np.random.default_rng(0)
    subsets = [np.flatnonzero(~long_or_exp), np.flatnonzero(long_or_exp), np.zeros(0, dtype=np.int64),
               *(rng.choice(len(words), size=n, replace=False) for n in (1, 5, 40))]
    for index in subsets:
        assert _same_bits(tokens.floats(index), expected[index])


def test_fast_path_values_match_numpy_string_conversion():
    """The old readers converted with np.array(strings, dtype=float64); same doubles."""
    words = EDGE_CASES + [f"{v:.7g}" for v in np.random.default_rng(0).normal(scale=50, size=2000)]
    tokens = tokenize(" ".join(words))
    assert _same_bits(tokens.floats(np.arange(len(words))), np.array(words, dtype=np.float64))


def test_str_input_and_empty_lines():
    tokens = tokenize("1 2\n\n  \n3\n")
    assert tokens.per_line.tolist() == [2, 0, 0, 1, 0]
    assert tokens.floats(np.arange(3)).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("text", [
    b"", b" \n \r\n", b"1..2", b"1.2.3", b"1e5.3", b"1e2e3", b".5", b"5.", b"-.5", b"1-2", b"- 1", b"1e",
    b"e5", b"1 .", b"1 e5", b"nan", b"inf", b"-inf", b"1,2", b"1 2 -", b"1\x0b2", b"1\x0c2", b"1\x1c2",
    b"+-1", b"1e+-2", b"1_000", b"0x10", "1\u00a02".encode(), "\u0661\u0662".encode(), b"1\x002",
])
def test_declines_what_it_does_not_read(text):
    assert tokenize(text) is None
    assert tokenize(text.decode("utf-8", errors="replace")) is None
