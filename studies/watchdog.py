"""A deadline for one call: no trial may hold a study forever.

:func:`call_with_deadline` runs a function in the calling thread; if it is still running after the
deadline, a timer thread raises :class:`Deadline` inside it (CPython's asynchronous exceptions, taken
between two bytecodes, so Python loops and sequences of numpy calls stop within moments; one long
call into C code stops when it returns). :class:`Deadline` derives from ``BaseException``, so an
``except Exception`` in the work cannot swallow it; the caller gets :class:`DeadlineExceeded`.

The deadline is a generous cap for hangs (a study's default is an hour per trial), not a budget:
within it, what a trial computes never depends on the machine's load.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRIAL_TIMEOUT_S = 3600.0        # a study's default: a generous cap for hung trials, not a budget


class Deadline(BaseException):
    """Raised inside the watched call when its time is up."""


class DeadlineExceeded(Exception):
    """What :func:`call_with_deadline` raises when the call ran past its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"ran longer than {seconds:g} s")
        self.seconds = seconds


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc else None)


def call_with_deadline(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, stopped with :class:`DeadlineExceeded` after ``seconds`` (``None``: no deadline)."""
    if seconds is None:
        return fn()
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                _raise_in(target, Deadline)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    try:
        try:
            timer.start()          # inside the try: the exception may arrive before fn() starts
            return fn()
        finally:
            with lock:
                state["done"] = True
                if state["fired"]:
                    _raise_in(target, None)       # not delivered yet: withdraw it
            timer.cancel()
    except Deadline:
        raise DeadlineExceeded(seconds) from None


__all__ = ["Deadline", "DeadlineExceeded", "call_with_deadline"]
