"""Which process runs a trial, whether it is still alive, and worker processes that die with their parent.

A journal file has no heartbeat, so each trial records its worker: host, process id and the process's
start time (``/proc/<pid>/stat``, so a recycled pid is not taken for the dead worker). Any later
worker on the same host can then tell that a running trial's worker is gone and re-queue the trial at
once. Trials of workers on other hosts cannot be judged this way and are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process from /proc, ``None`` if it has no entry."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()       # the name in parentheses may hold spaces
    return fields[0], int(fields[19])


def identity() -> dict:
    """This process (and thread), as a trial records its worker."""
    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": stat[1] if stat else None,
            "thread": threading.get_ident()}


def is_dead(worker: dict, *, idle: bool = False) -> bool:
    """Whether the process ``worker`` (an :func:`identity`) has certainly exited: on this host, and
    gone, a zombie, or its pid now belongs to a process started later. ``idle``: the caller runs no
    trial now, so a trial recorded by this very process was left behind (a failed write, say)."""
    if not isinstance(worker, dict) or worker.get("host") != socket.gethostname():
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():          # left behind by this very thread (another thread may be busy)
        return idle and worker == identity()
    if os.path.isdir("/proc"):
        stat = _proc_stat(pid)
        if stat is None:
            return True
        state, start = stat
        return state == "Z" or (worker.get("start") is not None and start != worker["start"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def die_with_parent(parent: int) -> None:
    """Make this (child) process receive SIGTERM when ``parent`` exits (Linux: the kernel's
    parent-death signal; elsewhere: a thread watching for the parent to go), and exit at once if it
    already has. SIGTERM then stops the worker as Ctrl-C does: its running trial is queued again."""
    signal.signal(signal.SIGTERM, _interrupt)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:                          # the parent died before we got here
        raise KeyboardInterrupt

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_held = {"depth": 0, "pending": False}


def hold() -> Callable[[], None]:
    """Hold a SIGTERM stop until the returned function is called (the first call counts; later
    ones do nothing). For a hold that starts and ends in different places: a worker holds a stop
    from before Optuna creates its trial until it has recorded the trial's id, so that no stop can
    leave a trial running that nobody knows of."""
    _held["depth"] += 1
    released = False

    def release() -> None:
        nonlocal released
        if released:
            return
        released = True
        _held["depth"] -= 1
        if not _held["depth"] and _held["pending"]:
            _held["pending"] = False
            raise KeyboardInterrupt

    return release


@contextlib.contextmanager
def uninterrupted():
    """Hold a SIGTERM stop until the block ends (failing and re-queueing a trial is two writes that
    belong together)."""
    release = hold()
    try:
        yield
    finally:
        release()


def _interrupt(signum, frame) -> None:
    # Once: the kernel's signal and the watching thread may both send one, and a second interrupt
    # would cut short the re-queueing of the running trial.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _held["depth"]:
        _held["pending"] = True
        return
    raise KeyboardInterrupt


__all__ = ["die_with_parent", "hold", "identity", "is_dead", "uninterrupted"]
