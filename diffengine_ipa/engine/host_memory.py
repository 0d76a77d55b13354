"""Host memory that a CPU training step reuses instead of faulting in anew.

glibc's ``malloc`` serves every block over its mmap threshold (at most 32 MiB)
with a fresh ``mmap`` and returns it on ``free``. A CPU step allocates such
blocks every call: oneDNN reorders each large convolution weight into its
blocked layout (59 MB for one of SD1.5's 1280-channel 3×3 convolutions), in
the forward and again in the backward pass. The kernel then zero-fills every
page on first touch: ~2.4 GB of page faults per full-size SD1.5 step at
256 px, about a quarter of the step. :func:`retain_freed_memory` keeps freed
blocks in the heap for the next step.
"""

import ctypes
import ctypes.util
import platform

__all__ = ['is_glibc', 'retain_freed_memory']

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1


def is_glibc() -> bool:
    """Whether this process's C library is glibc (whose ``mallopt`` this
    module sets)."""
    return platform.libc_ver()[0] == 'glibc'


def retain_freed_memory() -> bool:
    """Serve large blocks from the heap and never give freed memory back to
    the system, so a step reuses the pages of the one before; ``False``
    where the C library is not glibc (nothing changes)."""
    if not is_glibc():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    return bool(
        libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
    )
