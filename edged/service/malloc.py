"""The C allocator's settings for a long-running daemon with many threads (glibc only).

glibc gives threads that allocate at the same time arenas of their own, up to eight per
core, and keeps what each arena once held; from the first frame-sized buffer freed, it
also serves buffers up to that size from the arenas instead of mapping them, and keeps
those too. edged runs a thread per camera beside OpenVINO's, FFmpeg's and paho's, and
each camera's decoder, letterbox and tamper check allocate and free frame-sized buffers
from its own thread. Two arenas and a fixed 128 KiB mapping threshold (buffers above it
are mapped and given back when freed) keep the daemon nearer what it uses. Eight 720p30
RTSP cameras at 10/s: 304-307 -> 291 MB resident, CPU the same (128-131 %); four file
cameras on the stand-in engine: 1.98-2.04 -> 2.00-2.02 core-ms a frame (2-core Intel Xeon,
three rounds alternating). The daemon's hot path allocates nothing frame-sized per frame, so
the threshold adds few system calls (a key frame's packet, the tamper check's temporaries).

``MALLOC_ARENA_MAX`` or ``MALLOC_MMAP_THRESHOLD_`` in the environment (a systemd drop-in)
win: then nothing is changed. Elsewhere than glibc (musl), nothing is changed either.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Mapping

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024
_OVERRIDES = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")


def tune_allocator(env: Mapping[str, str]) -> str:
    """Set glibc's arenas and mapping threshold (call before the daemon starts its threads); what was done, for the
    log."""
    chosen = [name for name in _OVERRIDES if name in env]
    if chosen:
        return f"the C allocator as the environment sets it ({', '.join(chosen)})"
    mallopt = _mallopt()
    if mallopt is None:
        return "the C allocator as it is (not glibc)"
    if not (mallopt(M_ARENA_MAX, ARENAS) and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)):
        return "the C allocator as it is (glibc refused the settings)"
    return f"the C allocator: {ARENAS} arenas, buffers over {MMAP_THRESHOLD // 1024} KiB mapped"


def _mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        if not hasattr(libc, "gnu_get_libc_version"):
            return None
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt
