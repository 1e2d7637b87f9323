"""glibc ``malloc`` settings for processes that free and reallocate the same large blocks.

By default glibc serves a block above its mmap threshold (128 kB, raised as blocks are freed,
at most 32 MB) with fresh pages from the kernel and gives them back on ``free``; it also hands
freed memory at the top of its heap back to the kernel (trimming). A process that allocates
such blocks again and again, the same sizes each time, then pays a page fault per 4 kB on every
allocation. Two of ours do:

- preprocessing: a few MB of numpy temporaries per parsed file (a third of the parse time);
- a training step on a CPU: every activation and gradient is a new tensor, tens of MB each at
  hidden 256 with the views stacked in one batch (the official code, one view at a time, stays
  under the 32 MB threshold). The matrix products then write into freshly faulted pages.

Values and output bytes never change; only where the memory comes from does. On anything but
glibc (macOS, musl) nothing happens.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # <malloc.h>
_INT_MAX = 2**31 - 1  # mallopt takes an int


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return None


def keep_freed_memory() -> bool:
    """Blocks below 32 MB come from the heap, which is trimmed only when 64 MB lie free at its
    top: the process keeps the memory one sample needs (flat in the dataset size) instead of
    faulting it in again. Pool workers forked afterwards inherit it. Returns whether applied."""
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) \
        and bool(mallopt(_M_TRIM_THRESHOLD, 64 << 20))


def reuse_large_blocks() -> bool:
    """Every block, whatever its size, comes from the heap, which is trimmed only when 2 GiB lie
    free at its top: a training loop's step reuses the pages of the step before. The process keeps
    its peak (what one step needs, which it holds during every step anyway) until it exits.
    Returns whether applied."""
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
