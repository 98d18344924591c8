"""Where studies live: Optuna storages from a URL, with heartbeats, and URLs safe to print.

- ``sqlite:///PATH``            embedded, one file (the default: ``dse-studies.db`` in the working folder);
- ``journal:///PATH``          an append-only journal file, for several processes on one machine;
- ``postgresql://USER:PASS@HOST/DB`` (or ``mysql://...``) for workers on many machines.

Relational storages (SQLite, PostgreSQL, MySQL) record a heartbeat of every running trial: a worker
that dies (SIGKILL, a lost machine) stops beating, and the next worker to start a trial marks that trial
failed and queues a copy with the same hardware, so it is run again. Optuna's journal storage has no
heartbeat: after a crash, ``dse study resume NAME --retry-running`` fails and re-queues the running
trials once you know no worker is alive.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path

import optuna

from costmodel import SpecError

DEFAULT_STORAGE = "sqlite:///dse-studies.db"
HEARTBEAT_S = 10            # seconds between heartbeats of a running trial
GRACE_S = 60                # a trial silent this long belongs to a dead worker


@contextlib.contextmanager
def quiet():
    """Optuna marks heartbeats and trial retries experimental; we rely on them knowingly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def is_relational(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "postgres", "mysql")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


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
    return _OPEN[key]


def _open(url: str, heartbeat: int, grace: int, create: bool) -> optuna.storages.BaseStorage:
    scheme = url.split(":", 1)[0]
    if scheme == "journal":
        # Like SQLite URLs: journal:///relative/path, journal:////absolute/path.
        path = Path(url[len("journal:///"):] if url.startswith("journal:///") else url[len("journal:"):])
        _check_file(path, url, create)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if not is_relational(url):
        raise SpecError(f"unknown storage URL '{redact(url)}' (use sqlite:///PATH, journal:///PATH or "
                        "postgresql://USER:PASSWORD@HOST/DATABASE)", key="--storage")
    if is_sqlite(url):
        _check_file(Path(url.removeprefix("sqlite:///")), url, create)
    engine = {"pool_pre_ping": True} if not is_sqlite(url) else {"connect_args": {"timeout": 60}}
    try:
        with quiet():
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
                heartbeat_stale_trial_callback=retry_trial)
    except ImportError as exc:
        raise SpecError(f"the storage needs a database driver: {exc.msg} (for PostgreSQL: pip install "
                        "'dataflow-dse[postgres]')", key="--storage") from None
    except Exception as exc:  # SQLAlchemy's errors quote the URL: never print the password
        raise SpecError(f"cannot open storage {redact(url)}: {redact(str(exc)).splitlines()[0]}",
                        key="--storage") from None


MAX_RETRIES = 3


def retry_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a copy of a failed trial (same parameters) to run again, at most :data:`MAX_RETRIES`
    times. Like Optuna's ``RetryHeartbeatStaleTrialCallback`` (same ``failed_trial`` and
    ``retry_history`` attributes), but the copy starts without the constraint values and results the
    failed run had set: the retry computes its own."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    system = {k: v for k, v in trial.system_attrs.items() if not k.startswith("constraints")}
    system.update(failed_trial=trial.system_attrs.get("failed_trial", trial.number), retry_history=history)
    hardware = {k: v for k, v in trial.user_attrs.items() if k in _HARDWARE_KEYS}
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params=trial.params,
                                              distributions=trial.distributions, user_attrs=hardware,
                                              system_attrs=system))


# What a retried trial keeps of the failed one's attributes: the design, not its partial results.
_HARDWARE_KEYS = ("num_pes", "simd_lanes", "l1_size", "l2_size", "noc_bw", "offchip_bw", "noc_hop_latency")


def _check_file(path: Path, url: str, create: bool) -> None:
    if not create and not path.exists():
        raise SpecError(f"no study storage at {redact(url)} (file {path} does not exist)", key="--storage")
    if create and path.parent != Path("") and not path.parent.exists():
        raise SpecError(f"directory {path.parent} does not exist", key="--storage")


__all__ = ["DEFAULT_STORAGE", "is_relational", "is_sqlite", "open_storage", "quiet", "redact", "retry_trial"]
