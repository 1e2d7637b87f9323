"""Whitespace-separated decimal text -> numbers, in one vectorised pass over the bytes.

The NTU ``.skeleton`` and PKU-MMD skeleton readers spend almost all their time turning tens of
thousands of decimal strings into floats one Python object at a time. :func:`tokenize` does the
whole file at once with numpy: it finds the runs of digits, checks the characters between them
(so every token has the shape ``[+-]digits[.digits][(e|E)[+-]digits]``), reads each run of up to
16 digits with 8-byte SWAR arithmetic, and rebuilds each number as ``mantissa * 10**p`` or
``mantissa / 10**-p``. When the mantissa is below 2**53 and ``|p| <= 22`` both operands are exact
doubles, so the one IEEE multiplication or division is correctly rounded: the result is the
nearest double to the decimal, the same double Python's ``float()`` (and numpy's string
conversion) returns. Tokens outside that fast case (more than 19 significant digits, far
exponents) are converted with ``float()`` one by one, so the values are always identical.

This is the fast path only. It declines (returns None) for anything it does not recognise:
non-ASCII bytes, characters other than digits, ``+-.eE``, space, tab, CR and LF, and tokens of
any other shape (``nan``, ``.5``, ``1.``, ``1e``). The callers then run their line-by-line reader,
which accepts exactly what it always accepted and names the file and line of the first bad value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ALLOWED = b"0123456789+-.eE \t\r\n"  # the only bytes the fast path reads
_PAD = 16  # leading spaces: the 8 bytes before any digit run lie inside the buffer
_EXACT_MANTISSA = 2**53  # integers up to this are exact doubles
_MAX_POW10 = 22  # 10**22 is the largest exact power of ten in float64
_POW10_F = np.array([10.0**k for k in range(_MAX_POW10 + 1)])
_POW10_U = np.array([10**k for k in range(20)], dtype=np.uint64)
_ZEROS = np.uint64(0x3030303030303030)  # eight ASCII '0'
_SPACE, _NL, _DOT, _MINUS, _PLUS = (ord(c) for c in " \n.-+")


@dataclass(frozen=True)
class Tokens:
    """The numbers of a text, in order, and how many of them each line holds.

    ``values`` holds every token as float64, except where ``exact`` is False (rare: more than
    19 significant digits, a far exponent): :meth:`floats` converts those with ``float()``.
    ``per_line`` counts the tokens of each ``\\n``-separated line (one entry more than there
    are newlines: the text after the last one). ``plain`` marks the tokens made of digits only
    and ``integer`` holds their value when they have at most 16 digits (-1 otherwise).
    """

    data: bytes
    values: np.ndarray  # (n,) float64
    exact: np.ndarray  # (n,) bool
    plain: np.ndarray  # (n,) bool
    integer: np.ndarray  # (n,) int64
    per_line: np.ndarray  # (lines,) int64
    start: np.ndarray  # (n,) byte offset of each token in ``data``
    end: np.ndarray  # (n,) byte offset just past each token

    def floats(self, index: np.ndarray) -> np.ndarray:
        """float64 values of the tokens at ``index`` (an integer array of any shape)."""
        out = self.values[index]
        slow = ~self.exact[index]
        if slow.any():
            for pos in zip(*np.nonzero(slow), strict=True):
                out[pos] = float(self.text(int(index[pos])))
        return out

    def text(self, token: int) -> str:
        return self.data[self.start[token]:self.end[token]].decode("ascii")


def _eight_digits(words: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per uint64 (first digit in the lowest byte) -> their value."""
    v = (words & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561) >> np.uint64(8)
    v = (v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601) >> np.uint64(16)
    return (v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001) >> np.uint64(32)


# _KEEP[k]: the top k bytes of a word; the bytes below them are replaced by ASCII '0'
_KEEP = np.array([0] + [(0xFFFFFFFFFFFFFFFF << (8 * (8 - k))) & 0xFFFFFFFFFFFFFFFF for k in range(1, 9)],
                 dtype=np.uint64)


def _digits(words: np.ndarray, end: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Value of the ``count`` (0..8) ASCII digits before byte ``end`` of the buffer whose
    aligned little-endian words are ``words``."""
    start = end - 8  # the 8-byte window [start, end) straddles two aligned words
    i = start >> 3
    shift = (start & 7).astype(np.uint64) << np.uint64(3)
    window = (words.take(i) >> shift) | (words.take(i + 1) << (np.uint64(64) - shift))
    keep = _KEEP.take(count)
    return _eight_digits((window & keep) | (_ZEROS & ~keep))


def tokenize(data: bytes | str) -> Tokens | None:
    """Every whitespace-separated number of ``data``, or None when the fast path declines."""
    if isinstance(data, str):
        if not data.isascii():
            return None
        data = data.encode("ascii")
    if data.translate(None, _ALLOWED):
        return None  # another character: nan, inf, a word, a control or non-ASCII byte
    # padded with spaces to whole 8-byte words, plus one more word for the windows that straddle
    buf = b" " * _PAD + data + b" " * (16 - len(data) % 8)
    arr = np.frombuffer(buf, dtype=np.uint8)
    words = np.frombuffer(buf, dtype="<u8")

    digit = (arr - np.uint8(48)) < 10
    edges = np.flatnonzero(digit[1:] != digit[:-1]) + 1
    if edges.size == 0:
        return None
    run_start, run_end = edges[0::2], edges[1::2]  # the buffer starts and ends with a space
    length = run_end - run_start

    # The bytes between a run and the one before: inside a token '.', 'e', 'E', 'e+', 'e-',
    # 'E+' or 'E-'; between tokens whitespace, then the next token's sign if it has one.
    prev_end = np.empty_like(run_start)
    prev_end[0] = 0  # a padding space
    prev_end[1:] = run_end[:-1]
    gap = run_start - prev_end
    first = arr.take(prev_end)
    last = arr.take(run_start - 1)
    last_sign = (last == _MINUS) | (last == _PLUS)
    dot = (gap == 1) & (first == _DOT)
    expo = ((first | 0x20) == ord("e")) & ((gap == 1) | ((gap == 2) & last_sign))
    between = (first <= _SPACE) & ((last <= _SPACE) | (last_sign & (arr.take(run_start - 2) <= _SPACE)))
    if not (between[0] and (dot | expo | between).all()):
        return None
    # no sign, dot or e anywhere else (inside a run of whitespace, after the last number)
    n_expo = int(np.count_nonzero(expo))
    specials = int(np.count_nonzero(dot)) + n_expo + int(np.count_nonzero(last_sign))
    if specials != arr.size - int(np.count_nonzero(digit)) - int(np.count_nonzero(arr <= _SPACE)):
        return None
    # each token: integer part, then an optional fraction, then an optional exponent
    role = dot.view(np.int8) + 2 * expo.view(np.int8)
    if (~between[1:] & (role[1:] <= role[:-1])).any():
        return None  # '1.2.3', '1e2.3', '1e2e3'

    first_run = np.flatnonzero(between)
    n = first_run.size
    next_run = np.empty_like(first_run)  # first run of the next token
    next_run[:-1] = first_run[1:]
    next_run[-1] = run_start.size
    runs = next_run - first_run
    int_len = length.take(first_run)
    int_val = _digits(words, run_end.take(first_run), np.minimum(int_len, 8))
    slow = int_len > 8
    if slow.any():  # 9-16 digits: the 8 before the last 8
        big = np.flatnonzero(slow & (int_len <= 16))
        int_val[big] += _digits(words, run_end[first_run[big]] - 8, int_len[big] - 8) * np.uint64(10**8)
        slow[big] = False
    # fraction: the token's second run when the gap before it is the dot
    has_frac = np.zeros(n, dtype=bool)
    multi = runs > 1
    has_frac[multi] = role.take(first_run[multi] + 1) == 1
    frac_run = np.where(has_frac, first_run + 1, 0)
    frac_len = np.where(has_frac, length.take(frac_run), 0)
    frac_end = run_end.take(frac_run)
    frac_val = _digits(words, frac_end, np.minimum(frac_len, 8))
    long_frac = frac_len > 8
    if long_frac.any():
        big = np.flatnonzero(long_frac & (frac_len <= 16))
        frac_val[big] = frac_val[big] + _digits(words, frac_end[big] - 8, frac_len[big] - 8) * np.uint64(10**8)
        slow |= frac_len > 16
    slow |= (int_len + frac_len) > 19
    power = -frac_len
    if n_expo:  # the exponent run: the token's last run, after an 'e'
        e_run = np.flatnonzero(role == 2)
        e_tok = np.cumsum(between)[e_run] - 1
        e_len = length[e_run]
        e_val = _digits(words, run_end[e_run], np.minimum(e_len, 8)).astype(np.int64)
        slow[e_tok] |= e_len > 4
        power[e_tok] += np.where(arr[run_start[e_run] - 1] == _MINUS, -e_val, e_val)
    mantissa = int_val * _POW10_U.take(np.minimum(frac_len, 19)) + frac_val
    exact = ~slow & (mantissa <= np.uint64(_EXACT_MANTISSA)) & (power >= -_MAX_POW10) & (power <= _MAX_POW10)
    m = mantissa.astype(np.float64)
    values = m / _POW10_F.take(np.clip(-power, 0, _MAX_POW10))
    up = np.flatnonzero(power > 0)
    if up.size:
        values[up] = m[up] * _POW10_F.take(np.minimum(power[up], _MAX_POW10))
    signed = last_sign.take(first_run)
    np.negative(values, out=values, where=last.take(first_run) == _MINUS)

    plain = (runs == 1) & ~signed
    integer = np.where(plain & (int_len <= 16), int_val.view(np.int64), -1)
    start = run_start.take(first_run)
    newlines = np.flatnonzero(arr == _NL)
    per_line = np.diff(np.searchsorted(start, newlines), prepend=0, append=n)
    start -= signed + _PAD
    end = run_end.take(next_run - 1) - _PAD
    return Tokens(data, values, exact, plain, integer, per_line, start, end)
