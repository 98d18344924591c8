"""The mapping cache of a co-design study, kept beside the study rather than in its attributes.

Each entry is the best mapping the inner search found for one layer shape on one accelerator, under a
content hash of everything that decides it (:meth:`studies.codesign.Codesign.cache_key`), so resumed
runs and parallel workers reuse it. A study of a few hundred trials holds thousands of entries; kept in
the study's user attributes they made every Optuna Dashboard request carry them all. So they live:

- in SQLite and PostgreSQL (and MySQL) storages, in a table of their own, ``dse_mapping_cache``
  (study id, key, entry as JSON), in the same database;
- beside a journal file ``PATH``, in a second journal ``PATH.mappings`` (the same all-or-nothing
  appends as the study's, :mod:`studies.journal`), as attributes of a study of the same name.

Entries are only ever added; concurrent workers may add the same key (same content), and either
write may win.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import optuna

from .storage import is_journal, journal_path, open_storage, url_of

CACHE_PREFIX = "map:"
TABLE = "dse_mapping_cache"


class MappingCache:
    """Entries of one study's mapping cache: :meth:`refresh` reads what other workers added."""

    def __init__(self, storage, url: str, study_id: int, study_name: str) -> None:
        self.url = url
        self.entries: dict[str, dict] = {}
        self._backend = (_JournalCache(url, study_name) if is_journal(url)
                         else _TableCache(storage.engine, study_id))

    def refresh(self) -> dict[str, dict]:
        self.entries.update(self._backend.read())
        return self.entries

    def get(self, key: str) -> dict | None:
        if key not in self.entries:
            self.refresh()
        return self.entries.get(key)

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        # The cache saves work and nothing else: an entry that cannot be written (another worker's
        # identical one won; the disk is full) is searched again by whoever needs it.
        with contextlib.suppress(Exception):
            self._backend.write(key, entry)

    def __len__(self) -> int:
        return len(self.refresh())


_OPEN: dict[tuple[str, int], MappingCache] = {}


def for_study(study: optuna.Study) -> MappingCache:
    """The mapping cache of a study opened through :func:`studies.storage.open_storage`."""
    url = url_of(study._storage)
    storage = open_storage(url)
    key = (url, study._study_id)
    if key not in _OPEN:
        _OPEN[key] = MappingCache(storage, url, study._study_id, study.study_name)
    return _OPEN[key]


def forget() -> None:
    """Drop the open caches (with :func:`studies.storage.close_all`)."""
    _OPEN.clear()


class _TableCache:
    def __init__(self, engine, study_id: int) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.engine = engine
        self.study_id = study_id
        self.last_id = 0
        meta = sa.MetaData()
        self.table = sa.Table(
            TABLE, meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study_id", sa.Integer, nullable=False, index=True),
            sa.Column("cache_key", sa.String(64), nullable=False),
            sa.Column("entry", sa.Text, nullable=False),
            sa.UniqueConstraint("study_id", "cache_key"))
        try:
            meta.create_all(self.engine, checkfirst=True)
        except sa.exc.SQLAlchemyError:
            # Another worker created it between the check and the creation.
            if not sa.inspect(self.engine).has_table(TABLE):
                raise

    def read(self) -> dict[str, dict]:
        t = self.table
        query = (self.sa.select(t.c.id, t.c.cache_key, t.c.entry)
                 .where(t.c.study_id == self.study_id, t.c.id > self.last_id).order_by(t.c.id))
        out = {}
        with self.engine.connect() as conn:
            for row_id, key, entry in conn.execute(query):
                out[key] = json.loads(entry)
                self.last_id = max(self.last_id, row_id)
        return out

    def write(self, key: str, entry: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.insert().values(study_id=self.study_id, cache_key=key,
                                                    entry=json.dumps(entry, sort_keys=True)))


class _JournalCache:
    def __init__(self, url: str, study_name: str) -> None:
        from .journal import SafeJournalBackend, repair

        path = Path(str(journal_path(url)) + ".mappings")
        if path.exists():
            repair(path)
        else:
            path.touch()
        self.storage = optuna.storages.JournalStorage(SafeJournalBackend(str(path)))
        try:
            self.study_id = self.storage.create_new_study(
                [optuna.study.StudyDirection.MINIMIZE], study_name=study_name)
        except optuna.exceptions.DuplicatedStudyError:
            self.study_id = self.storage.get_study_id_from_name(study_name)

    def read(self) -> dict[str, dict]:
        attrs = self.storage.get_study_system_attrs(self.study_id)
        return {k: v for k, v in attrs.items() if k.startswith(CACHE_PREFIX)}

    def write(self, key: str, entry: dict) -> None:
        self.storage.set_study_system_attr(self.study_id, key, entry)


__all__ = ["CACHE_PREFIX", "TABLE", "MappingCache", "for_study", "forget"]
