"""Whitespace-separated decimal text -> numbers, in one vectorised pass over the bytes.

The NTU ``.skeleton`` and PKU-MMD skeleton readers used to spend almost all their time turning
tens of thousands of decimal strings into floats one Python object at a time. :func:`tokenize`
reads a whole file with numpy instead: it finds the runs of digits, checks the bytes between
them so that every token has the shape ``[+-]digits[.digits][(e|E)[+-]digits]``, and counts the
tokens of each line. :meth:`Tokens.floats` then reads the digit runs of the requested tokens 8
bytes at a time (SWAR arithmetic on uint64 words) and builds each value as
``mantissa * 10**p`` or ``mantissa / 10**-p``. With the mantissa at most 2**53 and ``|p| <= 22``
both operands are exact doubles, so that one IEEE operation is correctly rounded: the result is
the double nearest to the decimal, the same double Python's ``float()`` (and numpy's string
conversion) returns. Other tokens (more than 19 significant digits, far exponents: rare) go
through ``float()`` one by one, so the values are always the same.

This is a fast path only. :func:`tokenize` declines (returns None) whatever it does not
recognise: non-ASCII bytes, bytes other than digits, ``+-.eE``, space, tab, CR and LF, and
tokens of any other shape (``nan``, ``.5``, ``1.``, ``1e``, ``1.2.3``). The callers then run
their line-by-line reader, which accepts what it always accepted and names the file and the
line of the first bad value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ALLOWED = b"0123456789+-.eE \t\r\n"  # the only bytes the fast path reads
_PAD = 16  # leading spaces: the 8 bytes before any digit run lie inside the buffer
_EXACT_MANTISSA = 2**53  # integers up to this are exact doubles
_MAX_POW10 = 22  # 10**22 is the largest power of ten that is an exact double
_POW10_F = np.array([10.0**k for k in range(_MAX_POW10 + 1)])
_POW10_U = np.array([10**k for k in range(20)], dtype=np.uint64)
# _KEEP[k] keeps the top k bytes of a word (the last k digits before a run's end)
_KEEP = np.array([0] + [(0xFFFFFFFFFFFFFFFF << (8 * (8 - k))) & 0xFFFFFFFFFFFFFFFF for k in range(1, 9)],
                 dtype=np.uint64)
_SPACE, _NL, _DOT, _MINUS, _PLUS, _LOWER_E = (ord(c) for c in " \n.-+e")
_INTEGER, _FRACTION, _EXPONENT = 0, 1, 2  # the role of a digit run in its token
_BLOCK = 16384  # tokens converted at a time


def _eight_digits(words: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per uint64 (first digit in the lowest byte) -> their value."""
    v = (words & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561) >> np.uint64(8)
    v = (v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601) >> np.uint64(16)
    return (v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001) >> np.uint64(32)


def _digits(words: np.ndarray, end: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Value of the ``count`` (0..8) ASCII digits before byte ``end`` of the buffer whose
    aligned little-endian words are ``words``."""
    i = (end >> 3) - 1  # the 8 bytes before ``end`` straddle words i and i + 1
    shift = (end & 7).astype(np.uint64) << np.uint64(3)
    window = (words.take(i) >> shift) | (words.take(i + 1) << (np.uint64(64) - shift))
    # the bytes before the run become 0: leading zeros once _eight_digits masks each byte
    return _eight_digits(window & _KEEP.take(count))


def _run_value(words: np.ndarray, end: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Value of digit runs of 0..16 digits ending before byte ``end``."""
    value = _digits(words, end, np.minimum(length, 8))
    long = np.flatnonzero(length > 8)
    if long.size:
        value[long] += _digits(words, end[long] - 8, length[long] - 8) * np.uint64(10**8)
    return value


@dataclass(frozen=True, eq=False)
class Tokens:
    """The numeric tokens of a text, each a validated decimal; values are read on request.

    ``per_line`` counts the tokens of each ``\\n``-separated line (one entry more than there
    are newlines: the text after the last one).
    """

    data: bytes
    per_line: np.ndarray  # (lines,) int64
    _buf: bytes  # data with _PAD spaces before and spaces after, to whole 8-byte words
    _run_start: np.ndarray  # (runs,) byte offset in _buf of each digit run
    _run_end: np.ndarray
    _role: np.ndarray  # (runs + 1,) int8: _INTEGER, _FRACTION or _EXPONENT; a sentinel 0 last
    _first_run: np.ndarray  # (n,) the first digit run of each token
    _next_run: np.ndarray  # (n,) the first digit run of the next token
    _has_exponent: np.ndarray | None  # (n,) bool: the token has an exponent; None when none has
    _growing: int  # how many of those exponents have no '-'
    _longest: int  # the most digits in one run

    @property
    def _words(self) -> np.ndarray:
        return np.frombuffer(self._buf, dtype="<u8")

    def __len__(self) -> int:
        return self._first_run.size

    def _signs(self, first: np.ndarray) -> np.ndarray:
        """The byte before each token's first digit run: '+', '-' or whitespace."""
        return np.frombuffer(self._buf, dtype=np.uint8).take(self._run_start.take(first) - 1)

    def unbounded(self) -> np.ndarray:
        """Indices of the tokens whose value may be beyond float32's range: an exponent without
        '-', or a run of more than 38 digits. Every other token is below 1e38 in magnitude."""
        if not self._growing and self._longest <= 38:
            return np.zeros(0, dtype=np.int64)
        buf = np.frombuffer(self._buf, dtype=np.uint8)
        growing = (self._role[:-1] == _EXPONENT) & (buf.take(self._run_start - 1) != _MINUS)
        run = np.flatnonzero(growing | (self._run_end - self._run_start > 38))
        return np.unique(np.searchsorted(self._first_run, run, side="right") - 1)

    def integers(self, index: np.ndarray) -> np.ndarray:
        """int64 value of the tokens at ``index`` that are digits only (at most 16 of them);
        -1 for any other token."""
        first = self._first_run.take(index)
        length = self._run_end.take(first) - self._run_start.take(first)
        ok = (self._next_run.take(index) - first == 1) & (self._signs(first) <= _SPACE) & (length <= 16)
        value = _run_value(self._words, self._run_end.take(first), np.minimum(length, 16)).view(np.int64)
        return np.where(ok, value, -1)

    def plain(self, index: np.ndarray) -> np.ndarray:
        """Whether each token at ``index`` is made of digits only (``str.isdigit``)."""
        first = self._first_run.take(index)
        return (self._next_run.take(index) - first == 1) & (self._signs(first) <= _SPACE)

    def raw(self, index: np.ndarray) -> list[bytes]:
        """The tokens at ``index`` (a 1-d integer array) as they are written."""
        first = self._first_run.take(index)
        start = self._run_start.take(first) - (self._signs(first) > _SPACE)
        end = self._run_end.take(self._next_run.take(index) - 1)
        buf = self._buf
        return [buf[a:b] for a, b in zip(start.tolist(), end.tolist(), strict=True)]

    def text(self, index: np.ndarray) -> list[str]:
        """The tokens at ``index`` (a 1-d integer array) as they are written."""
        return [token.decode("ascii") for token in self.raw(index)]

    def floats(self, index: np.ndarray) -> np.ndarray:
        """float64 value of the tokens at ``index`` (an integer array of any shape): the double
        nearest to each decimal, as ``float()`` gives it."""
        index = np.asarray(index)
        flat = index.ravel()
        if flat.size <= _BLOCK:
            return self._floats(flat).reshape(index.shape)
        # in blocks: two dozen passes over arrays that stay in the CPU cache beat the same
        # passes over arrays that do not (a PKU-MMD file has ~150,000 numbers)
        out = np.empty(flat.size, dtype=np.float64)
        for lo in range(0, flat.size, _BLOCK):
            out[lo:lo + _BLOCK] = self._floats(flat[lo:lo + _BLOCK])
        return out.reshape(index.shape)

    def _floats(self, flat: np.ndarray) -> np.ndarray:
        n = flat.size
        buf = np.frombuffer(self._buf, dtype=np.uint8)
        start, end, role = self._run_start, self._run_end, self._role
        first = self._first_run.take(flat)
        # the fraction is the token's second run when a dot comes before it
        has_frac = role.take(first + 1) == _FRACTION
        runs = np.concatenate((first, np.where(has_frac, first + 1, first)))
        run_end = end.take(runs)
        length = run_end - start.take(runs)
        length[n:] *= has_frac
        int_len, frac_len = length[:n], length[n:]
        # both runs in one go; with runs of at most 8 digits (NTU, PKU-MMD) one word each. Longer
        # runs (a file's 17-digit NTU bodyIDs) are looked for among the requested tokens only.
        value = _digits(self._words, run_end, np.minimum(length, 8))
        long_runs = self._longest > 8 and int(length.max(initial=0)) > 8
        if long_runs:
            long = np.flatnonzero(length > 8)
            value[long] += _digits(self._words, run_end[long] - 8, np.minimum(length[long] - 8, 8)) * np.uint64(10**8)
        mantissa = value[:n] * _POW10_U.take(np.minimum(frac_len, 19)) + value[n:]
        exact = mantissa <= np.uint64(_EXACT_MANTISSA)
        if long_runs:
            exact &= (int_len <= 16) & (frac_len <= 16) & (int_len + frac_len <= 19)  # else overflow
        m = mantissa.astype(np.float64)
        # without an exponent the power is -frac_len, in -16..0 for runs of at most 16 digits
        values = m / _POW10_F.take(np.minimum(frac_len, _MAX_POW10))
        exp = np.flatnonzero(self._has_exponent.take(flat)) if self._has_exponent is not None else ()
        if len(exp):  # the exponent is the token's last run
            e_run = self._next_run.take(flat[exp]) - 1
            e_start = start.take(e_run)
            e_len = end.take(e_run) - e_start
            e_val = _digits(self._words, end.take(e_run), np.minimum(e_len, 4)).astype(np.int64)
            power = np.where(buf.take(e_start - 1) == _MINUS, -e_val, e_val) - frac_len[exp]
            exact[exp] &= (e_len <= 4) & (power >= -_MAX_POW10) & (power <= _MAX_POW10)
            m_exp = m[exp]
            values[exp] = np.where(power > 0, m_exp * _POW10_F.take(np.clip(power, 0, _MAX_POW10)),
                                   m_exp / _POW10_F.take(np.clip(-power, 0, _MAX_POW10)))
        values *= np.where(self._signs(first) == _MINUS, -1.0, 1.0)  # exact; 10x a masked negative
        inexact = np.flatnonzero(~exact)
        if inexact.size:
            values[inexact] = [float(t) for t in self.text(flat[inexact])]
        return values


def tokenize(data: bytes | str) -> Tokens | None:
    """Check that ``data`` is whitespace-separated decimals and find its tokens and lines; None
    when the fast path declines (see the module docstring)."""
    if isinstance(data, str):
        if not data.isascii():
            return None
        data = data.encode("ascii")
    if data.translate(None, _ALLOWED):
        return None  # another byte: nan, inf, a word, a control or non-ASCII character
    # spaces before, and after up to whole 8-byte words plus one (windows straddle two words)
    buf = b"".join((b" " * _PAD, data, b" " * (16 - len(data) % 8)))
    arr = np.frombuffer(buf, dtype=np.uint8)

    digit = (arr - np.uint8(48)) < 10
    edges = np.flatnonzero(digit[1:] != digit[:-1])  # the last byte before each run start and end
    if edges.size == 0:
        return None
    before_run = edges[0::2]  # the buffer starts and ends with a space: edges pair up
    run_start, run_end = before_run + 1, edges[1::2] + 1

    # The bytes between a run and the one before: inside a token '.', 'e', 'E', 'e+', 'e-',
    # 'E+' or 'E-'; between tokens whitespace, then the next token's sign if it has one.
    prev_end = np.empty_like(run_start)
    prev_end[0] = 0  # a padding space
    prev_end[1:] = run_end[:-1]
    gap = run_start - prev_end
    first = arr.take(prev_end)
    last = arr.take(before_run)
    last_sign = (last == _MINUS) | (last == _PLUS)
    dot = (gap == 1) & (first == _DOT)
    expo = ((first | 0x20) == _LOWER_E) & ((gap == 1) | ((gap == 2) & last_sign))
    between = (first <= _SPACE) & ((last <= _SPACE) | (last_sign & (arr.take(run_start - 2) <= _SPACE)))
    if not (between[0] and (dot | expo | between).all()):
        return None
    # ... and no sign, dot or e anywhere else (inside whitespace, after the last number)
    exponents = int(np.count_nonzero(expo))
    specials = int(np.count_nonzero(dot)) + exponents + int(np.count_nonzero(last_sign))
    if specials != arr.size - int(np.count_nonzero(digit)) - int(np.count_nonzero(arr <= _SPACE)):
        return None
    # the runs of a token: an integer part, then an optional fraction, then an optional exponent
    role = np.zeros(run_start.size + 1, dtype=np.int8)
    role[:-1] = dot.view(np.int8) + _EXPONENT * expo.view(np.int8)
    if (~between[1:] & (role[1:-1] <= role[:-2])).any():
        return None  # '1.2.3', '1e2.3', '1e2e3'

    first_run = np.flatnonzero(between)
    next_run = np.empty_like(first_run)
    next_run[:-1] = first_run[1:]
    next_run[-1] = run_start.size
    newlines = np.flatnonzero(arr == _NL)
    per_line = np.diff(np.searchsorted(run_start.take(first_run), newlines), prepend=0, append=first_run.size)
    growing = int(np.count_nonzero(expo & (last != _MINUS))) if exponents else 0
    has_exponent = None
    if exponents:
        has_exponent = np.zeros(first_run.size, dtype=bool)
        has_exponent[np.searchsorted(first_run, np.flatnonzero(expo), side="right") - 1] = True
    longest = int((run_end - run_start).max())
    return Tokens(data, per_line, buf, run_start, run_end, role, first_run, next_run, has_exponent, growing,
                  longest)
