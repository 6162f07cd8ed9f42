"""A runner started by another process (the orchestrator, a tuning study) ends when that process dies.

Such runners live in process groups of their own, so that one Ctrl-C reaches the
parent first and the parent stops each runner in turn. The price: if the parent is
killed outright (SIGKILL, the out-of-memory killer), nothing stops its runners; they
would keep two cores busy for hours with no one to record their timings, and a
resumed orchestrator would find their folders locked. On Linux the parent names
itself in the runner's environment and the runner asks the kernel for SIGTERM when
its parent dies (prctl PR_SET_PDEATHSIG): the runner then stops as on Ctrl-C, every
finished row flushed, summary.json "interrupted", and the resumed orchestrator redoes it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

PARENT_PID_VAR = "RLSUITE_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def start_runner(cmd: list[str], log, cwd) -> subprocess.Popen:
    """Start a runner whose output goes to ``log``, in a session and process group of its own
    (a terminal's Ctrl-C reaches the caller, which stops it), unbuffered, naming this process
    as its parent so that it stops if this process dies without stopping it.

    The caller must be the process (and the thread) that waits for the runner: the kernel
    signals the runner when the thread that forked it ends.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", **{PARENT_PID_VAR: str(os.getpid())})
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True, env=env)


def stop_with_parent() -> bool:
    """Have SIGTERM delivered to this process when the parent named by $RLSUITE_PARENT_PID dies.

    If that parent is already gone (it died between starting us and this call), the
    signal is sent at once. Returns whether the request was made: not without the
    variable (a runner started by hand), nor off Linux, nor if prctl fails.
    """
    expected = os.environ.get(PARENT_PID_VAR, "")
    if not expected.isdigit() or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGTERM)
    return True
