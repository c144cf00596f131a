"""The C allocator's settings (``service.malloc``): with them, threads that allocate at once share two arenas
instead of one each; a setting in the environment wins. Each case runs in a fresh interpreter (arenas are made once
per process), counting the arenas from glibc's own ``malloc_stats``."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import pytest

from edged.service.malloc import ARENAS, tune_allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                                reason="glibc's allocator")

THREADS = 8
CHILD = f"""
import ctypes, json, sys, threading
from edged.service.malloc import tune_allocator
said = tune_allocator(json.loads(sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
together = threading.Barrier({THREADS})
def work():
    together.wait()  # all alive at once: a thread's first allocation picks its arena
    block = libc.malloc(4096)
    together.wait()
    libc.free(block)
threads = [threading.Thread(target=work) for _ in range({THREADS})]
for t in threads: t.start()
for t in threads: t.join()
sys.stderr.flush()
libc.malloc_stats()  # to stderr: one 'Arena N:' block per arena
print(said)
"""


def arenas(env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(env)], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stderr.count("Arena "), done.stdout.strip()


def test_threads_share_two_arenas() -> None:
    count, said = arenas({})
    assert count <= ARENAS, (count, said)
    assert said == "the C allocator: 2 arenas, buffers over 128 KiB mapped"


def test_a_setting_in_the_environment_wins() -> None:
    count, said = arenas({"MALLOC_ARENA_MAX": "8"})  # named: edged leaves the allocator alone
    assert count > ARENAS, (count, said)  # glibc's own limit is eight per core
    assert said == "the C allocator as the environment sets it (MALLOC_ARENA_MAX)"


def test_nothing_is_changed_where_the_environment_says() -> None:
    assert "MALLOC_MMAP_THRESHOLD_" in tune_allocator({"MALLOC_MMAP_THRESHOLD_": "65536"})
