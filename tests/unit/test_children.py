"""Children the tools start are terminated when the interpreter exits."""

from __future__ import annotations

import subprocess
import sys

from edged.testing.children import reap, track


def test_reap_terminates_tracked_children_still_running() -> None:
    done = track(subprocess.Popen([sys.executable, "-c", "pass"]))
    done.wait()
    running = track(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    reap(grace_s=5)
    assert running.poll() is not None and running.returncode < 0  # ended by a signal
    assert done.returncode == 0


def test_an_exception_in_the_parent_does_not_leave_its_child_behind() -> None:
    script = ("import subprocess, sys\n"
              "from edged.testing.children import track\n"
              "p = track(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']))\n"
              "print(p.pid, flush=True)\n"
              "raise RuntimeError('boom')\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert parent.returncode == 1 and "boom" in parent.stderr
    pid = int(parent.stdout.split()[0])
    try:
        with open(f"/proc/{pid}/stat") as stat:  # gone, or a zombie waiting for init
            assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        pass
