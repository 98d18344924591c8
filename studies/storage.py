"""Where studies live: Optuna storages from a URL, with heartbeats, and URLs safe to print.

- ``sqlite:///PATH``            embedded, one file (the default: ``dse-studies.db`` in the working folder);
- ``journal:///PATH``          an append-only journal file, for several processes on one machine;
- ``postgresql://USER@HOST/DB`` (or ``mysql://...``) for workers on many machines.

The URL comes from ``--storage``, else from the file ``--storage-file`` names (its first line), else
from the environment variable ``DSE_STORAGE``, else the default: so a password need never appear on a
command line, where every user of the machine sees it in the process list. For PostgreSQL, leave the
password out of the URL altogether: libpq reads ``PGPASSWORD`` and ``~/.pgpass`` (``PGPASSFILE``).
A password in a URL may contain any character: one ``@`` or more are taken as part of it (the host
follows the last ``@``), and it is masked whole in every message.

Relational storages (SQLite, PostgreSQL, MySQL) record a heartbeat of every running trial: a worker
that dies (SIGKILL, a lost machine) stops beating, and the next worker to start a trial marks that trial
failed and queues a copy with the same hardware, so it is run again. Journal files have no heartbeat;
:mod:`studies.codesign` records which process runs each trial and re-queues the trials of processes
that are gone. Journal files are opened through :mod:`studies.journal`, which keeps them readable
through a full disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

if TYPE_CHECKING:              # Optuna is imported where it is used (start-up)
    import optuna

from costmodel import SpecError, limits

DEFAULT_STORAGE = "sqlite:///dse-studies.db"
STORAGE_ENV = "DSE_STORAGE"
HEARTBEAT_S = 10            # seconds between heartbeats of a running trial
GRACE_S = 60                # a trial silent this long belongs to a dead worker


@contextlib.contextmanager
def quiet():
    """Optuna marks heartbeats and trial retries experimental; we rely on them knowingly."""
    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


# ------------------------------------------------------------------------------------ URLs
def _split(url: str) -> tuple[str, str | None, str | None, str] | None:
    """(scheme://, user, password, rest) of a URL with credentials; the host part follows the *last*
    ``@`` (so a password may hold ``@``); ``None`` if the URL has none."""
    scheme, sep, after = url.partition("://")
    if not sep or "@" not in after:
        return None
    userinfo, _, rest = after.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return scheme + "://", user, password if colon else None, rest


def password_of(url: str) -> str | None:
    parts = _split(url)
    return parts[2] if parts else None


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    parts = _split(url)
    if parts is None or parts[2] is None:
        return url
    scheme, user, _, rest = parts
    return f"{scheme}{user}:***@{rest}"


def redact_text(text: str, url: str) -> str:
    """A message (a driver's error, say) with the URL's password masked wherever it appears."""
    password = password_of(url)
    text = text.replace(url, redact(url))
    if password:
        for form in {password, unquote(password), quote(password, safe="")}:
            if len(form) >= 3:
                text = text.replace(form, "***")
    return text


def normalise(url: str) -> str:
    """A URL whose password SQLAlchemy reads as written: raw ``@`` and stray ``%`` are escaped
    (SQLAlchemy would end the password at the first ``@`` and connect to the rest as a host)."""
    parts = _split(url)
    if parts is None or parts[2] is None:
        return url
    scheme, user, password, rest = parts
    password = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", password).replace("@", "%40")
    return f"{scheme}{user}:{password}@{rest}"


def storage_url(given: str | None = None, file: str | None = None) -> str:
    """The storage URL: ``--storage``, else the first line of ``--storage-file``, else
    ``$DSE_STORAGE``, else :data:`DEFAULT_STORAGE`."""
    if given:
        return given
    if file:
        text = limits.read_limited(file, lambda reason: SpecError(f"{file}: {reason}", key="--storage-file"),
                                   limit=64 << 10)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise SpecError(f"{file} is empty (it should hold the storage URL)", key="--storage-file")
        return lines[0]
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def password_warning(argv: list[str]) -> str | None:
    """A warning when a password was given on the command line (visible in the process list)."""
    for i, arg in enumerate(argv):
        url = arg.split("=", 1)[1] if arg.startswith("--storage=") else (
            argv[i + 1] if arg == "--storage" and i + 1 < len(argv) else None)
        if url and password_of(url):
            return (f"warning: the storage URL's password is visible to every user of this machine in "
                    f"the process list; give the URL with {STORAGE_ENV}=... or --storage-file, or leave "
                    "the password out (PGPASSWORD, ~/.pgpass)")
    return None


def is_relational(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "postgres", "mysql")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def is_journal(url: str) -> bool:
    return url.startswith("journal:")


# One storage (and database connection pool) per URL and heartbeat setting in a process.
_OPEN: dict[tuple, optuna.storages.BaseStorage] = {}


def open_storage(url: str | None = None, *, heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S,
                 create: bool = True) -> optuna.storages.BaseStorage:
    """The storage a URL names (module docstring). ``create=False`` refuses a SQLite or journal file
    that does not exist yet (for commands that only read)."""
    url = url or DEFAULT_STORAGE
    key = (url, heartbeat, grace)
    if key not in _OPEN:
        _OPEN[key] = _open(url, heartbeat, grace, create)
        _URLS[id(_OPEN[key])] = url
    return _OPEN[key]


_URLS: dict[int, str] = {}


def url_of(storage: optuna.storages.BaseStorage) -> str:
    """The URL :func:`open_storage` opened a storage from (also through Optuna's caching wrapper)."""
    url = _URLS.get(id(storage)) or _URLS.get(id(getattr(storage, "_backend", None)))
    if url is None:
        raise ValueError("the storage was not opened with studies.storage.open_storage")
    return url


def close_all() -> None:
    """Forget every storage this process opened, closing database connections (the next
    :func:`open_storage` opens afresh, as a new process would)."""
    import optuna

    from . import mapcache
    mapcache.forget()
    for opened in _OPEN.values():
        if isinstance(opened, optuna.storages.RDBStorage):
            opened.scoped_session.remove()
            opened.engine.dispose()
    _OPEN.clear()
    _URLS.clear()


def journal_path(url: str) -> Path:
    # Like SQLite URLs: journal:///relative/path, journal:////absolute/path.
    return Path(url[len("journal:///"):] if url.startswith("journal:///") else url[len("journal:"):])


def _open(url: str, heartbeat: int, grace: int, create: bool) -> optuna.storages.BaseStorage:
    import optuna

    if is_journal(url):
        from .journal import SafeJournalBackend, repair

        path = journal_path(url)
        _check_file(path, url, create)
        if path.exists():
            note = repair(path)
            if note:
                print(f"note: {note}", file=sys.stderr)
        try:
            return optuna.storages.JournalStorage(SafeJournalBackend(str(path)))
        except SpecError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
            raise SpecError(f"cannot read journal {path}: {type(exc).__name__}: {str(exc)[:200]}",
                            key="--storage") from None
    if not is_relational(url):
        raise SpecError(f"unknown storage URL '{redact(url)}' (use sqlite:///PATH, journal:///PATH or "
                        "postgresql://USER@HOST/DATABASE)", key="--storage")
    if is_sqlite(url):
        _check_file(Path(url.removeprefix("sqlite:///")), url, create)
    engine = {"pool_pre_ping": True} if not is_sqlite(url) else {"connect_args": {"timeout": 60}}
    try:
        with quiet():
            return optuna.storages.RDBStorage(
                normalise(url), engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
                heartbeat_stale_trial_callback=retry_trial)
    except ImportError as exc:
        raise SpecError(f"the storage needs a database driver: {exc.msg} (for PostgreSQL: pip install "
                        "'dataflow-dse[postgres]')", key="--storage") from None
    except Exception as exc:  # SQLAlchemy's errors quote the URL: never print the password
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SpecError(f"cannot open storage {redact(url)}: {redact_text(first, url)}",
                        key="--storage") from None


MAX_RETRIES = 3


def retry_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a copy of a failed trial (same parameters) to run again, at most :data:`MAX_RETRIES`
    times. Like Optuna's ``RetryHeartbeatStaleTrialCallback`` (same ``failed_trial`` and
    ``retry_history`` attributes), but the copy starts without the constraint values and results the
    failed run had set: the retry computes its own."""
    import optuna
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    system = {k: v for k, v in trial.system_attrs.items()
              if not k.startswith("constraints") and k not in _RESULT_SYSTEM_KEYS}
    system.update(failed_trial=trial.system_attrs.get("failed_trial", trial.number), retry_history=history)
    hardware = {k: v for k, v in trial.user_attrs.items() if k in _HARDWARE_KEYS}
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params=trial.params,
                                              distributions=trial.distributions, user_attrs=hardware,
                                              system_attrs=system))


# What a retried trial keeps of the failed one's attributes: the design, not its partial results.
_RESULT_SYSTEM_KEYS = ("dse_layers", "dse_worker")
_HARDWARE_KEYS = ("num_pes", "simd_lanes", "l1_size", "l2_size", "noc_bw", "offchip_bw", "noc_hop_latency")


def _check_file(path: Path, url: str, create: bool) -> None:
    try:
        _check_path(path, url, create)
    except OSError as exc:                 # a name too long, a loop of links
        raise SpecError(f"cannot use {str(path)[:80]}: {exc.strerror or exc}", key="--storage") from None


def _check_path(path: Path, url: str, create: bool) -> None:
    if str(path) in ("", ".", ":memory:") or url.rstrip("/") in ("sqlite:", "journal:"):
        # SQLAlchemy would open a database in memory: the study would vanish with the process.
        raise SpecError(f"'{redact(url)}' names no file (sqlite:///PATH or journal:///PATH; "
                        "PATH relative to the working folder, or ////absolute/path)", key="--storage")
    if path.is_dir():
        raise SpecError(f"{path} is a directory, not a study file", key="--storage")
    if path.exists() and not path.is_file():
        raise SpecError(f"{path} is not a regular file", key="--storage")
    if not create and not path.exists():
        raise SpecError(f"no study storage at {redact(url)} (file {path} does not exist)", key="--storage")
    if create and path.parent != Path("") and not path.parent.is_dir():
        raise SpecError(f"directory {path.parent} does not exist", key="--storage")


__all__ = ["DEFAULT_STORAGE", "STORAGE_ENV", "close_all", "is_journal", "is_relational", "is_sqlite",
           "journal_path", "normalise", "open_storage", "password_warning", "quiet", "redact", "redact_text",
           "retry_trial", "storage_url", "url_of"]
