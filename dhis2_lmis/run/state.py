"""Sync state: per-program cursors, processed events, the last connection and a run log.

The scheduled sync must survive being killed at any point without losing an event or handing
one over twice after success. That needs a small durable store: which ``updatedAt`` watermark
each program has reached, which events were handled (and at which ``updatedAt``, since a
re-completed event comes back with a newer one), which failed and must be tried again.

:class:`SqliteStateStore` keeps all of that in one SQLite file (stdlib :mod:`sqlite3`, WAL
journal). A batch of outcomes and the cursor move that follows them can be committed together
with :meth:`SqliteStateStore.transaction`, so a crash leaves either all or none of them.

Two rules protect the operator's data:

* A state file that is not ours (not SQLite, another application's database, a newer schema)
  or that cannot be read and written raises :class:`StateError` naming the file and what to do.
  It is never replaced, truncated or deleted: it holds the only record of what was handled.
* Only one runner works at a time: :meth:`SqliteStateStore.acquire_runner_lock` takes an
  exclusive lock file beside the database; a second runner gets :class:`StateLockedError`
  naming the process that holds it.

Times: aware datetimes are stored as ISO text with their offset. Naive datetimes (DHIS2
timestamps carry no offset unless ``serverTimeZoneId`` is known) are stored and returned as
given, without an offset. Comparing a naive with an aware value treats the naive one as UTC.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Literal, Protocol, get_args

import attrs

from dhis2_lmis.dhis2._clock import utc_now
from dhis2_lmis.errors import StateError, StateLockedError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt
else:
    import fcntl

__all__ = [
    "DEFAULT_STATE_PATH",
    "SCHEMA_VERSION",
    "Outcome",
    "ProcessedEvent",
    "RunRecord",
    "RunnerLock",
    "SqliteStateStore",
    "StateError",
    "StateLockedError",
    "StateStore",
]

log = logging.getLogger(__name__)

DEFAULT_STATE_PATH = "dhis2-lmis.sqlite"
SCHEMA_VERSION = 1

# "D2LM": marks the file as ours in the SQLite header, so another application's database is
# recognised before any table is looked at.
_APPLICATION_ID = 0x44324C4D

Outcome = Literal["handled", "failed", "skipped"]
_OUTCOMES: Mapping[str, Outcome] = MappingProxyType({name: name for name in get_args(Outcome)})


# Permission checks ask about the ids that will actually open the file, where the OS can.
_EFFECTIVE_IDS = os.access in os.supports_effective_ids


@attrs.frozen
class ProcessedEvent:
    """The latest recorded outcome for one event.

    Attributes:
        program: program key or UID the event belongs to, as the runner names it.
        event_uid: DHIS2 event UID.
        updated_at: the event's ``updatedAt`` when the outcome was recorded.
        outcome: ``handled``, ``failed`` or ``skipped``.
        at: when the outcome was recorded.
        error: why it failed or was skipped, if known.
        attempts: outcomes recorded for this event at this ``updated_at`` (a newer
            ``updatedAt`` starts again at 1).
    """

    program: str
    event_uid: str
    updated_at: datetime
    outcome: Outcome
    at: datetime
    error: str | None = None
    attempts: int = 1


@attrs.frozen
class RunRecord:
    """One entry of the run log; ``finished_at`` is None for a run that never finished."""

    run_id: int
    programs: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None = None
    fetched: int = 0
    handled: int = 0
    duplicates_skipped: int = 0
    failed: int = 0
    pushed: int = 0
    errors: tuple[str, ...] = ()


class StateStore(Protocol):
    """What the sync runner needs from a state store; :class:`SqliteStateStore` is the default."""

    def get_cursor(self, program: str) -> datetime | None: ...

    def set_cursor(self, program: str, updated_at: datetime) -> None: ...

    def record_outcome(
        self,
        program: str,
        event_uid: str,
        updated_at: datetime,
        outcome: Outcome,
        *,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None: ...

    def outcome_for(self, program: str, event_uid: str) -> ProcessedEvent | None: ...

    def is_processed(self, program: str, event_uid: str, updated_at: datetime) -> bool: ...

    def was_handled_before(self, program: str, event_uid: str) -> bool: ...

    def failed_events(self, program: str) -> list[ProcessedEvent]: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def set_last_connection(self, at: datetime, server_version: str) -> None: ...

    def last_connection(self) -> tuple[datetime, str] | None: ...

    def start_run(self, programs: Sequence[str]) -> int: ...

    def finish_run(
        self,
        run_id: int,
        *,
        fetched: int,
        handled: int,
        duplicates_skipped: int,
        failed: int,
        pushed: int,
        errors: Sequence[str],
    ) -> None: ...

    def runs(self, limit: int = 10) -> list[RunRecord]: ...

    def acquire_runner_lock(self, owner: str) -> AbstractContextManager[object]: ...

    def close(self) -> None: ...


# --- schema ------------------------------------------------------------------------------------

_SCHEMA_V1 = (
    "CREATE TABLE dhis2_lmis_schema (version INTEGER NOT NULL)",
    "CREATE TABLE cursors (program TEXT PRIMARY KEY, updated_at TEXT NOT NULL,"
    " set_at TEXT NOT NULL)",
    "CREATE TABLE processed_events ("
    " program TEXT NOT NULL, event_uid TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " outcome TEXT NOT NULL CHECK (outcome IN ('handled', 'failed', 'skipped')),"
    " at TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL,"
    " handled_updated_at TEXT,"  # newest updatedAt ever handled: survives a later failure
    " PRIMARY KEY (program, event_uid)) WITHOUT ROWID",
    "CREATE INDEX processed_events_by_outcome ON processed_events (program, outcome)",
    "CREATE TABLE last_connection (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " at TEXT NOT NULL, server_version TEXT NOT NULL)",
    "CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, programs TEXT NOT NULL,"
    " started_at TEXT NOT NULL, finished_at TEXT, fetched INTEGER NOT NULL DEFAULT 0,"
    " handled INTEGER NOT NULL DEFAULT 0, duplicates_skipped INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0, pushed INTEGER NOT NULL DEFAULT 0,"
    " errors TEXT NOT NULL DEFAULT '[]')",
)

# The migration hook: entry ``i`` upgrades a file from schema version ``i + 1`` to ``i + 2``.
# Each step runs inside the opening transaction, together with the version bump, so a crash
# mid-migration leaves the old schema intact. Append a step when SCHEMA_VERSION goes up.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = ()


def _to_text(value: datetime) -> str:
    return value.isoformat()


def _from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _as_comparable(value: datetime, other: datetime) -> tuple[datetime, datetime]:
    """Both values in a form ``<`` accepts: a naive one is read as UTC when the other is aware."""
    if (value.tzinfo is None) == (other.tzinfo is None):
        return value, other
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc), other
    return value, other.replace(tzinfo=timezone.utc)


def _is_newer(value: datetime, than: datetime) -> bool:
    a, b = _as_comparable(value, than)
    return a > b


# --- runner lock ---------------------------------------------------------------------------------


class RunnerLock:
    """An exclusive lock file that keeps a second runner off the same state.

    Taken by :meth:`SqliteStateStore.acquire_runner_lock`; released by :meth:`release` or by
    leaving the ``with`` block. On POSIX it is ``fcntl.flock(LOCK_EX | LOCK_NB)``: the kernel
    drops it when the process dies, so a crash never leaves a stale lock. Because ``flock``
    belongs to an open file description, a second acquisition in the same process conflicts
    too. On Windows ``msvcrt.locking`` is used instead (untested there). ``flock`` is not
    reliable on some network file systems: keep the state file on a local disk.

    The file holds the holder's pid, owner label and start time, only to word the error a
    second runner sees; it is truncated (never deleted) on release, since deleting a lock file
    lets two processes lock two different files.
    """

    def __init__(self, path: Path, owner: str, *, now: Callable[[], datetime]) -> None:
        self.path = path
        self.owner = owner
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(
                f"cannot open the runner lock file {path}: {exc.strerror}; give the user "
                "running dhis2-lmis read and write access to the state file's directory",
                state_path=path,
            ) from exc
        try:
            _lock_fd(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            pid, holder_owner, since = holder
            who = f"process {pid}" if pid is not None else "another process"
            if holder_owner:
                who += f" ({holder_owner}"
                who += f", since {since})" if since else ")"
            raise StateLockedError(
                f"another dhis2-lmis runner is already working on this state: {who} holds "
                f"{path}. Wait for it to finish or stop that process, then run again; the lock "
                "is released automatically when the process exits, so do not delete the file",
                lock_path=str(path),
                holder_pid=pid,
                holder_owner=holder_owner,
            ) from None
        self._fd: int | None = fd
        record = f"{os.getpid()}\n{owner}\n{_to_text(now())}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        log.debug("runner lock %s taken by pid %d (%s)", path, os.getpid(), owner)

    @property
    def held(self) -> bool:
        """True until :meth:`release` runs."""
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up; calling it again does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            _unlock_fd(fd)
        finally:
            os.close(fd)
        log.debug("runner lock %s released", self.path)

    def __enter__(self) -> RunnerLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunnerLock(path={str(self.path)!r}, owner={self.owner!r}, held={self.held})"


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only

    def _lock_fd(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _read_holder(fd: int) -> tuple[int | None, str | None, str | None]:
    """The pid, owner and start time the holder wrote, as far as they can be read."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return None, None, None
    lines = text.splitlines()
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    owner = lines[1] if len(lines) > 1 and lines[1] else None
    since = lines[2] if len(lines) > 2 and lines[2] else None
    return pid, owner, since


# --- the store ---------------------------------------------------------------------------------


class SqliteStateStore:
    """The state of the scheduled sync in one SQLite file.

    Opening validates the file: a missing or empty file is created with the current schema, an
    older schema is migrated, and anything else (not SQLite, another application's database, a
    newer schema, no read/write permission) raises :class:`StateError` without touching it.

    One connection serves the store, guarded by a lock (``check_same_thread=False``), so
    threads may share a store; a thread inside :meth:`transaction` holds the store until the
    block ends. Several processes may open the same file (WAL journal, ``busy_timeout``), but
    only the holder of :meth:`acquire_runner_lock` should run a sync.

    Args:
        path: the state file (``[sync] state``); its directory must exist.
        now: clock for ``at`` and run times; defaults to UTC now.
        busy_timeout_s: how long to wait for another process's write before failing.

    Raises:
        StateError: the file is unusable; it is left unchanged.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_STATE_PATH,
        *,
        now: Callable[[], datetime] = utc_now,
        busy_timeout_s: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._now = now
        self._lock = threading.RLock()
        self._depth = 0  # open transaction levels on the connection
        self._closed = False
        self._check_access()
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
        except sqlite3.Error as exc:
            raise self._error("cannot open", exc) from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._open_schema()
        except BaseException:
            self._conn.close()
            raise

    # -- opening ---------------------------------------------------------------------------------

    def _check_access(self) -> None:
        """Refuse paths SQLite would open read-only or fail on with a vague message."""
        parent = self.path.parent if str(self.path.parent) else Path(".")
        where = f"the state file {self.path}"
        if not parent.is_dir():
            raise StateError(
                f"cannot create {where}: directory {parent} does not exist; create it or set "
                "[sync] state to a path in an existing directory",
                state_path=self.path,
            )
        if self.path.exists():
            if self.path.is_dir():
                raise StateError(
                    f"{where} is a directory; set [sync] state to a file path",
                    state_path=self.path,
                )
            if not os.access(self.path, os.R_OK | os.W_OK, effective_ids=_EFFECTIVE_IDS):
                raise StateError(
                    f"permission denied: cannot read and write {where}; give the user running "
                    "dhis2-lmis read and write access to it (it was left unchanged)",
                    state_path=self.path,
                )
        if not os.access(parent, os.W_OK | os.X_OK, effective_ids=_EFFECTIVE_IDS):
            raise StateError(
                f"permission denied: cannot write in directory {parent}, which holds {where} "
                "and its journal and lock files; give the user running dhis2-lmis write access",
                state_path=self.path,
            )

    def _error(self, doing: str, exc: sqlite3.Error) -> StateError:
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_NOTADB" or "not a database" in str(exc):
            advice = (
                "it is not a SQLite database (corrupt, or some other file). It was left "
                "unchanged: restore it from a backup, or move it aside to start a new state"
            )
        elif name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in str(exc):
            advice = (
                "another process kept the database busy too long; make sure only one "
                "dhis2-lmis runner uses it and try again"
            )
        elif name == "SQLITE_CORRUPT" or "malformed" in str(exc):
            advice = (
                "the database is damaged. It was left unchanged: restore it from a backup, or "
                "move it aside to start a new state"
            )
        elif name in ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"):
            advice = (
                "it cannot be opened for writing; give the user running dhis2-lmis read and "
                "write access to the file and its directory"
            )
        else:
            advice = "the file was left unchanged"
        return StateError(
            f"{doing} the state file {self.path}: {exc}; {advice}", state_path=self.path
        )

    def _open_schema(self) -> None:
        conn = self._conn
        try:
            # The first read parses the header: a non-SQLite file fails here, before any write.
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc
        self._check_foreign(app_id, tables)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL survives a killed process; a power cut may lose the last commits,
            # which only means those events are handed over again (at-least-once).
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error("cannot open", exc) from exc
        try:
            # Checked again under the write lock: another process may have created it meanwhile.
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            self._check_foreign(app_id, tables)
            if not tables:
                for statement in _SCHEMA_V1:
                    conn.execute(statement)
                conn.execute("INSERT INTO dhis2_lmis_schema (version) VALUES (?)", (1,))
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                version = 1
                log.info("created state file %s (schema %d)", self.path, SCHEMA_VERSION)
            else:
                version = self._schema_version()
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state file {self.path} has schema version {version}, newer than this "
                    f"dhis2-lmis understands ({SCHEMA_VERSION}); upgrade dhis2-lmis (the file "
                    "was left unchanged)",
                    state_path=self.path,
                )
            while version < SCHEMA_VERSION:
                _MIGRATIONS[version - 1](conn)
                version += 1
                conn.execute("UPDATE dhis2_lmis_schema SET version = ?", (version,))
                log.info("migrated state file %s to schema %d", self.path, version)
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error("cannot set up", exc) from exc
            raise

    def _check_foreign(self, app_id: int, tables: set[str]) -> None:
        if app_id not in (0, _APPLICATION_ID) or (tables and "dhis2_lmis_schema" not in tables):
            raise StateError(
                f"the state file {self.path} is a SQLite database of some other application "
                "(no dhis2-lmis schema). It was left unchanged: set [sync] state to another "
                "path, or move that file aside",
                state_path=self.path,
            )

    def _schema_version(self) -> int:
        row = self._conn.execute("SELECT version FROM dhis2_lmis_schema").fetchone()
        if row is None or not isinstance(row[0], int) or row[0] < 1:
            raise StateError(
                f"the state file {self.path} has no valid schema version; restore it from a "
                "backup or move it aside (it was left unchanged)",
                state_path=self.path,
            )
        return row[0]

    # -- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit everything written inside the block at once, or nothing if it raises.

        The runner records a batch of outcomes and then moves the cursor past them: done in one
        transaction, a crash can never leave the cursor ahead of unrecorded events. Nested
        blocks become savepoints. The calling thread holds the store until the block ends.

        Raises:
            StateError: the database could not commit.
        """
        with self._lock:
            self._ensure_open()
            depth = self._depth
            begin, commit = (
                ("BEGIN IMMEDIATE", "COMMIT")
                if depth == 0
                else (f"SAVEPOINT sp{depth}", f"RELEASE sp{depth}")
            )
            rollback = ("ROLLBACK",) if depth == 0 else (f"ROLLBACK TO sp{depth}", commit)
            try:
                self._conn.execute(begin)
            except sqlite3.Error as exc:
                raise self._error("cannot write", exc) from exc
            self._depth += 1
            try:
                yield
            except BaseException as exc:
                self._depth -= 1
                try:
                    for statement in rollback:
                        self._conn.execute(statement)
                except sqlite3.Error:
                    log.warning("rollback of state file %s failed", self.path, exc_info=True)
                if isinstance(exc, sqlite3.Error):
                    raise self._error("cannot write to", exc) from exc
                raise
            self._depth -= 1
            try:
                self._conn.execute(commit)
            except sqlite3.Error as exc:
                if depth == 0:
                    self._conn.execute("ROLLBACK")
                raise self._error("cannot commit to", exc) from exc

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            self._ensure_open()
            try:
                return list(self._conn.execute(sql, params))
            except sqlite3.Error as exc:
                raise self._error("cannot read", exc) from exc

    def _ensure_open(self) -> None:
        if self._closed:
            raise StateError(f"the state store for {self.path} is closed", state_path=self.path)

    # -- cursors ---------------------------------------------------------------------------------

    def get_cursor(self, program: str) -> datetime | None:
        """The newest ``updatedAt`` the runner has moved past for ``program``, or None."""
        rows = self._read("SELECT updated_at FROM cursors WHERE program = ?", (program,))
        return _from_text(str(rows[0][0])) if rows else None

    def set_cursor(self, program: str, updated_at: datetime) -> None:
        """Move the cursor forward to ``updated_at``; an older or equal value is ignored.

        Forward-only, so a late or out-of-order call can never move the watermark back and make
        every later run fetch (and re-check) history it already covered.
        """
        with self.transaction():
            current = self.get_cursor(program)
            if current is not None and not _is_newer(updated_at, current):
                log.debug("cursor %s stays at %s (asked %s)", program, current, updated_at)
                return
            self._conn.execute(
                "INSERT INTO cursors (program, updated_at, set_at) VALUES (?, ?, ?)"
                " ON CONFLICT (program) DO UPDATE SET updated_at = excluded.updated_at,"
                " set_at = excluded.set_at",
                (program, _to_text(updated_at), _to_text(self._now())),
            )

    # -- processed events ------------------------------------------------------------------------

    def record_outcome(
        self,
        program: str,
        event_uid: str,
        updated_at: datetime,
        outcome: Outcome,
        *,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record what happened to one event at one ``updatedAt``.

        The stored row follows the newest ``updatedAt`` seen; an outcome for an older version
        (a stale read) only counts towards :meth:`was_handled_before`. ``attempts`` counts
        outcomes for the same ``updatedAt`` and restarts at 1 for a newer one.

        Raises:
            ValueError: ``outcome`` is not one of ``handled``, ``failed``, ``skipped``.
            StateError: the database could not be written.
        """
        if outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(_OUTCOMES)}, not {outcome!r}")
        when = at if at is not None else self._now()
        with self.transaction():
            rows = self._conn.execute(
                "SELECT updated_at, attempts, handled_updated_at FROM processed_events"
                " WHERE program = ? AND event_uid = ?",
                (program, event_uid),
            ).fetchall()
            handled_at = updated_at if outcome == "handled" else None
            if not rows:
                self._conn.execute(
                    "INSERT INTO processed_events (program, event_uid, updated_at, outcome, at,"
                    " error, attempts, handled_updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                    (
                        program,
                        event_uid,
                        _to_text(updated_at),
                        outcome,
                        _to_text(when),
                        error,
                        _to_text(handled_at) if handled_at is not None else None,
                    ),
                )
                return
            stored_text, attempts, handled_text = rows[0]
            stored = _from_text(stored_text)
            if handled_text is not None:
                previous = _from_text(handled_text)
                if handled_at is None or not _is_newer(handled_at, previous):
                    handled_at = previous
            handled_value = _to_text(handled_at) if handled_at is not None else None
            if _is_newer(stored, updated_at):
                log.debug("outcome for %s/%s at older updatedAt %s", program, event_uid, updated_at)
                self._conn.execute(
                    "UPDATE processed_events SET handled_updated_at = ?"
                    " WHERE program = ? AND event_uid = ?",
                    (handled_value, program, event_uid),
                )
                return
            same_version = not _is_newer(updated_at, stored)
            self._conn.execute(
                "UPDATE processed_events SET updated_at = ?, outcome = ?, at = ?, error = ?,"
                " attempts = ?, handled_updated_at = ? WHERE program = ? AND event_uid = ?",
                (
                    _to_text(updated_at),
                    outcome,
                    _to_text(when),
                    error,
                    attempts + 1 if same_version else 1,
                    handled_value,
                    program,
                    event_uid,
                ),
            )

    def outcome_for(self, program: str, event_uid: str) -> ProcessedEvent | None:
        """The latest outcome recorded for the event, or None if it was never seen."""
        rows = self._read(
            "SELECT program, event_uid, updated_at, outcome, at, error, attempts"
            " FROM processed_events WHERE program = ? AND event_uid = ?",
            (program, event_uid),
        )
        return _event_from_row(rows[0]) if rows else None

    def is_processed(self, program: str, event_uid: str, updated_at: datetime) -> bool:
        """True when the event was handled at this ``updated_at`` or a newer one.

        A failed or skipped outcome never counts, so a failed event is tried again; a newer
        ``updatedAt`` (a re-completed event) is not processed yet.
        """
        rows = self._read(
            "SELECT handled_updated_at FROM processed_events WHERE program = ? AND event_uid = ?",
            (program, event_uid),
        )
        if not rows or rows[0][0] is None:
            return False
        return not _is_newer(updated_at, _from_text(str(rows[0][0])))

    def was_handled_before(self, program: str, event_uid: str) -> bool:
        """True when any version of the event was handled: hand it over with ``is_update=True``."""
        rows = self._read(
            "SELECT 1 FROM processed_events WHERE program = ? AND event_uid = ?"
            " AND handled_updated_at IS NOT NULL",
            (program, event_uid),
        )
        return bool(rows)

    def failed_events(self, program: str) -> list[ProcessedEvent]:
        """Events of ``program`` whose latest outcome is ``failed``, oldest ``updatedAt`` first."""
        rows = self._read(
            "SELECT program, event_uid, updated_at, outcome, at, error, attempts"
            " FROM processed_events WHERE program = ?"
            " AND outcome = 'failed' ORDER BY updated_at, event_uid",
            (program,),
        )
        return [_event_from_row(row) for row in rows]

    # -- last connection ---------------------------------------------------------------------------

    def set_last_connection(self, at: datetime, server_version: str) -> None:
        """Remember the last successful connection (the "Test connection" button's result)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO last_connection (id, at, server_version) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET at = excluded.at,"
                " server_version = excluded.server_version",
                (_to_text(at), server_version),
            )

    def last_connection(self) -> tuple[datetime, str] | None:
        """When the last successful connection happened and the server version it reported."""
        rows = self._read("SELECT at, server_version FROM last_connection WHERE id = 1")
        return (_from_text(str(rows[0][0])), str(rows[0][1])) if rows else None

    # -- run log -----------------------------------------------------------------------------------

    def start_run(self, programs: Sequence[str]) -> int:
        """Open a run log entry and return its id; a run that crashes keeps ``finished_at`` None."""
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO runs (programs, started_at) VALUES (?, ?)",
                (json.dumps(list(programs)), _to_text(self._now())),
            )
            run_id = cursor.lastrowid
        assert run_id is not None  # an INSERT into a rowid table always sets it
        return run_id

    def finish_run(
        self,
        run_id: int,
        *,
        fetched: int,
        handled: int,
        duplicates_skipped: int,
        failed: int,
        pushed: int,
        errors: Sequence[str],
    ) -> None:
        """Close a run log entry with its counts and error messages.

        Raises:
            StateError: no run has this id.
        """
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE runs SET finished_at = ?, fetched = ?, handled = ?,"
                " duplicates_skipped = ?, failed = ?, pushed = ?, errors = ? WHERE run_id = ?",
                (
                    _to_text(self._now()),
                    fetched,
                    handled,
                    duplicates_skipped,
                    failed,
                    pushed,
                    json.dumps(list(errors)),
                    run_id,
                ),
            )
            if cursor.rowcount != 1:
                raise StateError(
                    f"no run {run_id} in the state file {self.path}", state_path=self.path
                )

    def runs(self, limit: int = 10) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first."""
        rows = self._read(
            "SELECT run_id, programs, started_at, finished_at, fetched, handled,"
            " duplicates_skipped, failed, pushed, errors FROM runs ORDER BY run_id DESC LIMIT ?",
            (limit,),
        )
        return [
            RunRecord(
                run_id=int(str(r[0])),
                programs=tuple(str(p) for p in json.loads(str(r[1]))),
                started_at=_from_text(str(r[2])),
                finished_at=_from_text(str(r[3])) if r[3] is not None else None,
                fetched=int(str(r[4])),
                handled=int(str(r[5])),
                duplicates_skipped=int(str(r[6])),
                failed=int(str(r[7])),
                pushed=int(str(r[8])),
                errors=tuple(str(e) for e in json.loads(str(r[9]))),
            )
            for r in rows
        ]

    # -- runner lock and lifetime ------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The runner lock file: the state file's name plus ``.lock``, in the same directory."""
        return self.path.with_name(self.path.name + ".lock")

    def acquire_runner_lock(self, owner: str) -> RunnerLock:
        """Take the one-runner-at-a-time lock, or fail at once if another runner has it.

        Args:
            owner: a label for the error another runner sees (``"sync"``, ``"cli pull"``).

        Raises:
            StateLockedError: another runner (in any process, this one included) holds it.
            StateError: the lock file cannot be created.
        """
        return RunnerLock(self.lock_path, owner, now=self._now)

    def close(self) -> None:
        """Close the connection; further calls raise :class:`StateError`. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStateStore({str(self.path)!r})"


def _event_from_row(row: Sequence[object]) -> ProcessedEvent:
    outcome = _OUTCOMES[str(row[3])]  # the CHECK constraint keeps it one of the three
    return ProcessedEvent(
        program=str(row[0]),
        event_uid=str(row[1]),
        updated_at=_from_text(str(row[2])),
        outcome=outcome,
        at=_from_text(str(row[4])),
        error=None if row[5] is None else str(row[5]),
        attempts=int(str(row[6])),
    )
