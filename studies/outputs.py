"""Output files: checked before any work starts, written whole or not at all.

A command that writes a file (``--output``, ``--report``, ``--output-dir``) checks first that it can:
the path is not a directory, its folder exists (or can be created, for output folders) and accepts a
new file. The file is then written to a temporary name in the same folder and renamed over the target
when complete, so an error or a full disk leaves the old file (or none), never half of a new one.
Targets that are not regular files (``/dev/stdout``, a named pipe) are written directly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from costmodel import SpecError


def _writable_folder(folder: Path, flag: str, target: Path) -> None:
    """Raise unless ``folder`` is an existing directory in which a new file can be created."""
    if not folder.exists():
        raise SpecError(f"directory {folder} does not exist", key=flag)
    if not folder.is_dir():
        raise SpecError(f"{folder} is not a directory (in {target})", key=flag)
    try:                                     # the only sure test (read-only mounts, quotas, root)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".dse-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SpecError(f"cannot write in {folder}: {exc.strerror or exc}", key=flag) from None


@contextlib.contextmanager
def _file_system(path, flag: str):
    """File-system questions may fail (a name too long, a loop of links): one line."""
    try:
        yield
    except OSError as exc:
        raise SpecError(f"cannot use {str(path)[:80]}: {exc.strerror or exc}", key=flag) from None


def check_output_file(path: str | Path, flag: str = "--output") -> Path:
    """A file path that can be written (see the module docstring)."""
    p = Path(path)
    with _file_system(path, flag):
        if str(path).endswith(os.sep) or p.is_dir():
            raise SpecError(f"{p} is a directory; give a file name", key=flag)
        if p.exists() and not p.is_file():
            return p                         # a device or pipe: written directly
        _writable_folder(p.parent if str(p.parent) else Path("."), flag, p)
    return p


def check_output_dir(path: str | Path, flag: str = "--output-dir") -> Path:
    """A folder that exists or can be created, and in which files can be written."""
    p = Path(path)
    with _file_system(path, flag):
        if p.exists() and not p.is_dir():
            raise SpecError(f"{p} exists and is not a directory", key=flag)
        existing = p
        while not existing.exists():
            existing = existing.parent
        _writable_folder(existing, flag, p)
    return p


@contextlib.contextmanager
def output_path(path: str | Path, flag: str = "--output") -> Iterator[Path]:
    """A temporary path to write instead of ``path``; renamed to ``path`` when the block succeeds,
    removed when it fails. Write errors (a full disk) become one-line :class:`SpecError`."""
    target = check_output_file(path, flag)
    with _file_system(path, flag):
        direct = target.exists() and not target.is_file()
    if direct:
        yield target
        return
    with _file_system(path, flag):
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".",
                                   prefix=f".{target.name[:100]}.", suffix=".part")
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if target.exists():                  # keep the permissions of the file replaced
            os.chmod(tmp_path, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except OSError as exc:
        raise SpecError(f"cannot write {target}: {exc.strerror or exc} (nothing was written)",
                        key=flag) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def open_output(path: str | Path | None, flag: str = "--output"):
    """A text stream for ``path`` written as :func:`output_path` does; stdout (left open) for ``None``."""
    if path is None:
        yield sys.stdout
        return
    with output_path(path, flag) as tmp, open(tmp, "w", newline="") as stream:
        yield stream


def write_text(path: str | Path, text: str, flag: str) -> Path:
    with output_path(path, flag) as tmp:
        tmp.write_text(text)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()                 # read once: os.umask can only be read by setting it


__all__ = ["check_output_dir", "check_output_file", "open_output", "output_path", "write_text"]
