"""Journal files that survive a full disk and a writer killed mid-record.

Optuna's journal is an append-only file of JSON records, one per line. Optuna itself appends a batch
with one buffered write: a full disk or a SIGKILL can leave a torn last record, the next append glues
its record to the torn one, and from then on every open fails (JSONDecodeError) and the study's
completed trials can no longer be read. Our backend (:class:`SafeJournalBackend`) keeps the file whole:

* **before writing**, under the journal's lock, it refuses a batch when the disk has less free space
  than the batch plus :data:`SPARE_BYTES`, and cuts a torn tail left by a killed writer;
* **if a write fails** anyway (ENOSPC, EIO), it truncates the file back to its size before the write,
  so the file ends with the last complete record, and raises one clear :class:`SpecError`;
* **on open**, :func:`repair` checks every record. A torn last record is cut (the original file is
  kept next to it as ``PATH.damaged-<time>``); a record glued behind a torn one, as earlier versions
  could leave, is recovered. Anything else that is not a journal record is refused, and a file that
  is not a journal at all is never modified.

So a full disk costs at most the operation being written; every completed trial stays readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from costmodel import SpecError

from .processes import uninterrupted

SPARE_BYTES = 64 << 10          # refuse an append that would leave less than this free
_RECORD_START = b'{"op_code":'


@contextlib.contextmanager
def _locked(path: str):
    lock = JournalFileSymlinkLock(path)      # the lock Optuna's own journal writers take
    # A worker's stop (SIGTERM raises KeyboardInterrupt) inside Optuna's acquire or release leaves
    # the lock half taken or half released and turns the stop into an error, so the worker would not
    # re-queue its trial: the stop waits until the lock is released.
    with uninterrupted():
        try:
            lock.acquire()
        except OSError as exc:               # e.g. no room for the lock's symbolic link
            raise _error(Path(path), f"cannot take its lock ({path}.lock): {exc.strerror or exc}; "
                                     "nothing was written and every completed trial is kept") from None
        try:
            yield
        finally:
            lock.release()


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("op_code"), int)


def _error(path: Path, reason: str) -> SpecError:
    return SpecError(f"journal {path}: {reason}", key="--storage")


def repair(path: str | Path) -> str | None:
    """Check a journal file and mend a torn end (see the module docstring); returns what was done,
    or ``None`` if the file was whole. Raises :class:`SpecError` for a file that is not a journal or
    is damaged beyond a torn record."""
    p = Path(path)
    with _locked(str(p)):
        data = p.read_bytes()
        if not data:
            return None
        *complete, tail = data.split(b"\n")              # tail: bytes after the last newline
        kept: list[bytes] = []
        glued = 0
        dropped_last = False
        for number, line in enumerate(complete, start=1):
            if _is_record(line):
                kept.append(line)
                continue
            start = line.find(_RECORD_START, 1)
            if kept and start > 0 and _is_record(line[start:]):
                kept.append(line[start:])                # a torn record with a whole one glued on
                glued += 1
                continue
            if not kept:
                raise _error(p, "is not an Optuna journal file (its first line is not a journal record)")
            if number == len(complete) and not tail:
                dropped_last = True                       # a torn last record ending in a newline
                break
            raise _error(p, f"line {number} is not a journal record and is not at the end: the file is "
                            "damaged (restore it from a copy)")
        if not kept and not tail.startswith(_RECORD_START):
            raise _error(p, "is not an Optuna journal file")
        torn = dropped_last or bool(tail)
        if not torn and not glued:
            return None
        copy = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        good = b"".join(line + b"\n" for line in kept)
        try:
            shutil.copy2(p, copy)
            if glued:
                tmp = p.with_name(p.name + ".repair")
                tmp.write_bytes(good)
                os.replace(tmp, p)
            else:                                         # cut in place: readers' offsets stay valid
                os.truncate(p, len(good))
        except OSError as exc:
            with contextlib.suppress(OSError):
                copy.unlink()
            raise _error(p, f"has a torn last record but cannot be mended ({exc.strerror or exc}): free "
                            "some space and run the same command again") from None
        what = (["cut a torn last record"] if torn else []) + \
            ([f"recovered {glued} record(s) glued behind torn ones"] if glued else [])
        return f"journal {p}: {' and '.join(what)}; the original is kept as {copy}"


class SafeJournalBackend(JournalFileBackend):
    """Optuna's journal file backend with all-or-nothing appends (module docstring)."""

    def append_logs(self, logs: list[dict]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
        path = self._file_path
        with _locked(path):
            size = os.path.getsize(path)
            if size:
                with open(path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":               # a writer died mid-record: cut it off
                        f.seek(0)
                        size = f.read().rfind(b"\n") + 1
                        os.truncate(path, size)
            free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
            if free < len(data) + SPARE_BYTES:
                raise _error(Path(path), f"not enough free space to write ({free:,} bytes free); nothing was "
                                         "written and every completed trial is kept: free some space and "
                                         "run the same command again")
            try:
                with open(path, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.truncate(path, size)
                raise _error(Path(path), f"write failed ({exc.strerror or exc}); the journal was rolled back "
                                         "to its last complete record and every completed trial is kept: "
                                         "fix the cause and run the same command again") from None


__all__ = ["SPARE_BYTES", "SafeJournalBackend", "repair"]
