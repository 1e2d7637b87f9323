"""skelrep.memory: freed blocks are reused instead of faulted in again (glibc only).

Each case runs in a fresh interpreter (malloc settings are process-wide): it allocates a block,
writes every page, frees it, and does the same again, counting the minor page faults of each
round. With the setting the second round reuses the first one's pages; without it (the control,
glibc's defaults) a block of that size is mapped afresh each time, which shows the test can tell
the two apart.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_ROUNDS = textwrap.dedent("""
    import ctypes, resource, sys
    import skelrep.memory as memory
    applied = getattr(memory, sys.argv[1])() if sys.argv[1] != "none" else True
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = int(sys.argv[2])
    faults = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        libc.free(block)
    print(int(applied), *faults)
""")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")


def _rounds(setting: str, size: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _ROUNDS, setting, str(size)], capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] != "1":
        pytest.skip("not glibc: the settings do not apply")
    return int(out[1]), int(out[2])


@pytest.mark.parametrize(("setting", "size"), [("keep_freed_memory", 8 << 20), ("reuse_large_blocks", 64 << 20)])
def test_a_freed_block_is_reused_without_page_faults(setting, size):
    first, second = _rounds(setting, size)
    assert first >= size // 4096 // 4  # the first round faulted its pages in (at least a quarter: huge pages aside)
    assert second <= first // 10, (first, second)


@pytest.mark.parametrize("size", [8 << 20, 64 << 20])
def test_control_glibc_defaults_fault_the_block_in_again(size):
    first, second = _rounds("none", size)
    assert second >= first // 2, (first, second)


def test_keep_freed_memory_still_maps_blocks_above_32_mb():
    """Preprocessing's setting leaves blocks above 32 MB to mmap (its memory stays flat); only
    the training loop's setting serves those from the heap."""
    first, second = _rounds("keep_freed_memory", 64 << 20)
    assert second >= first // 2, (first, second)
