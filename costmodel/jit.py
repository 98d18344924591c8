"""Numba for the compiled kernel: its cache lives outside the repository, and a bad cache is harmless.

The cache goes to ``$NUMBA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/dataflow-dse/numba`` (by default
``~/.cache/dataflow-dse/numba``), else a per-user folder in the temporary directory. If none can be
written Numba compiles in every process (slower start, same results). A cache file that cannot be read
(truncated, from another Numba) is deleted and the kernel compiled again (:func:`recover`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def cache_dir() -> Path | None:
    """Where compiled code is kept (None: nowhere writable)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for candidate in (home / "dataflow-dse" / "numba",
                      Path(tempfile.gettempdir()) / f"dataflow-dse-numba-{os.getuid()}"):
        if _writable(candidate):
            return candidate
    return None


CACHE_DIR = cache_dir()
if CACHE_DIR is not None:
    os.environ.setdefault("NUMBA_CACHE_DIR", str(CACHE_DIR))

import numba  # noqa: E402  (after NUMBA_CACHE_DIR is set: Numba reads it on import)

if CACHE_DIR is not None:
    numba.config.CACHE_DIR = str(CACHE_DIR)          # in case Numba was imported before us

njit = numba.njit


def recover(error: Exception) -> bool:
    """After a failure to load cached code, delete this package's cache files; True if there were any
    (the caller then retries, and Numba compiles afresh)."""
    if CACHE_DIR is None or not CACHE_DIR.is_dir():
        return False
    removed = False
    for entry in CACHE_DIR.iterdir():
        if entry.is_dir() and entry.name.startswith("costmodel_"):
            shutil.rmtree(entry, ignore_errors=True)
            removed = True
    return removed
