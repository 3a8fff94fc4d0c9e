"""SqliteStateStore: cursors, processed events, run log, runner lock and unusable files."""

from __future__ import annotations

import inspect
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dhis2_lmis.errors import Dhis2Error
from dhis2_lmis.run.state import (
    SCHEMA_VERSION,
    ProcessedEvent,
    SqliteStateStore,
    StateError,
    StateLockedError,
    StateStore,
)

T0 = datetime(2026, 11, 3, 8, 30, 0, 123000)  # naive, as DHIS2 sends updatedAt
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(hours=1)
CLOCK = datetime(2026, 11, 4, 6, 0, tzinfo=timezone.utc)


def fixed_clock() -> Callable[[], datetime]:
    return lambda: CLOCK


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(db_path, now=fixed_clock()) as s:
        yield s


# --- opening ---------------------------------------------------------------------------------


def test_missing_file_is_created_with_schema(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        assert s.get_cursor("order") is None
    assert db_path.is_file()
    with sqlite3.connect(db_path) as conn:
        (version,) = conn.execute("SELECT version FROM dhis2_lmis_schema").fetchone()
    conn.close()
    assert version == SCHEMA_VERSION


def test_empty_file_is_initialised(db_path: Path) -> None:
    db_path.write_bytes(b"")
    with SqliteStateStore(db_path) as s:
        s.set_cursor("order", T0)
        assert s.get_cursor("order") == T0


# Every method of the StateStore protocol; a new one fails the test below until it is exercised.
PROTOCOL_METHODS = sorted(
    name for name, member in vars(StateStore).items() if callable(member) and name[0] != "_"
)


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_store_takes_the_protocol_parameters(name: str) -> None:
    # what mypy checks only where a SqliteStateStore is passed as a StateStore, checked always
    def parameters(owner: type) -> list[tuple[str, object, object, object]]:
        signature = inspect.signature(getattr(owner, name))
        return [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()]

    assert parameters(SqliteStateStore) == parameters(StateStore)


def test_store_behaves_as_the_protocol_says(store: SqliteStateStore) -> None:
    state: StateStore = store  # from here on, only what the protocol offers
    assert sorted(
        ["get_cursor", "set_cursor", "record_outcome", "outcome_for", "is_processed",
         "was_handled_before", "failed_events", "transaction", "set_last_connection",
         "last_connection", "start_run", "finish_run", "runs", "acquire_runner_lock", "close"]
    ) == PROTOCOL_METHODS  # fmt: skip

    assert state.get_cursor("order") is None
    state.set_cursor("order", T1)
    state.set_cursor("order", T0)  # forward-only: an older value is ignored
    assert state.get_cursor("order") == T1

    def broken_batch() -> None:
        with state.transaction():
            state.record_outcome("order", "EventDone01", T0, "handled")
            raise RuntimeError("the batch broke")

    with pytest.raises(RuntimeError, match="batch broke"):
        broken_batch()
    assert state.outcome_for("order", "EventDone01") is None  # rolled back
    with state.transaction():
        state.record_outcome("order", "EventDone01", T0, "handled")
        state.record_outcome("order", "EventFail01", T0, "failed", error="handler raised")
    done = state.outcome_for("order", "EventDone01")
    assert done is not None and (done.outcome, done.updated_at) == ("handled", T0)
    assert state.is_processed("order", "EventDone01", T0)
    assert not state.is_processed("order", "EventDone01", T2)  # re-completed since
    assert state.was_handled_before("order", "EventDone01")
    assert not state.was_handled_before("order", "EventFail01")
    assert [(e.event_uid, e.error) for e in state.failed_events("order")] == [
        ("EventFail01", "handler raised")
    ]

    state.set_last_connection(CLOCK, "2.41.0")
    assert state.last_connection() == (CLOCK, "2.41.0")
    run_id = state.start_run(["order"])
    state.finish_run(
        run_id, fetched=2, handled=1, duplicates_skipped=0, failed=1, pushed=0,
        errors=["handler raised"],
    )  # fmt: skip
    (run,) = state.runs()
    assert (run.run_id, run.programs, run.finished_at) == (run_id, ("order",), CLOCK)
    assert (run.fetched, run.handled, run.failed, run.errors) == (2, 1, 1, ("handler raised",))

    with state.acquire_runner_lock("first"), pytest.raises(StateLockedError):
        state.acquire_runner_lock("second")
    state.close()
    with pytest.raises(StateError, match="closed"):
        state.get_cursor("order")


def test_default_path_is_dhis2_lmis_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SqliteStateStore() as s:
        assert s.path == Path("dhis2-lmis.sqlite")
    assert (tmp_path / "dhis2-lmis.sqlite").is_file()


def test_garbage_file_raises_state_error_and_is_left_unchanged(db_path: Path) -> None:
    garbage = bytes(range(256)) * 16
    db_path.write_bytes(garbage)
    with pytest.raises(StateError) as info:
        SqliteStateStore(db_path)
    assert str(db_path) in str(info.value)
    assert "not a SQLite database" in str(info.value)
    assert info.value.state_path == str(db_path)
    assert isinstance(info.value, Dhis2Error)
    assert db_path.read_bytes() == garbage


def test_other_applications_database_raises_state_error_and_is_left_unchanged(
    db_path: Path,
) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StateError, match="some other application") as info:
        SqliteStateStore(db_path)
    assert str(db_path) in str(info.value)
    assert db_path.read_bytes() == before


def test_newer_schema_version_raises_state_error(db_path: Path) -> None:
    SqliteStateStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE dhis2_lmis_schema SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="upgrade dhis2-lmis"):
        SqliteStateStore(db_path)


def test_missing_directory_raises_state_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "state.sqlite"
    with pytest.raises(StateError, match="does not exist") as info:
        SqliteStateStore(path)
    assert str(path) in str(info.value)
    assert not path.parent.exists()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can traverse (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="dhis2-lmis-state-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@contextmanager
def unprivileged() -> Iterator[None]:
    """Act as an ordinary user: root ignores file permissions, so drop to ``nobody`` for a while."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_permission_denied_raises_state_error_and_leaves_file(shared_dir: Path) -> None:
    path = shared_dir / "state.sqlite"
    with SqliteStateStore(path) as s:
        s.set_cursor("order", T0)
    before = path.read_bytes()
    path.chmod(0o000)
    try:
        with unprivileged(), pytest.raises(StateError) as info:
            SqliteStateStore(path)
    finally:
        path.chmod(0o644)
    assert "permission denied" in str(info.value)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_closed_store_raises_state_error(db_path: Path) -> None:
    s = SqliteStateStore(db_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        s.get_cursor("order")


# --- cursors ---------------------------------------------------------------------------------


def test_cursor_round_trips_naive_value_as_given(store: SqliteStateStore) -> None:
    store.set_cursor("order", T0)
    cursor = store.get_cursor("order")
    assert cursor == T0
    assert cursor is not None
    assert cursor.tzinfo is None


def test_cursor_round_trips_aware_value_with_offset(store: SqliteStateStore) -> None:
    nairobi = timezone(timedelta(hours=3))
    value = datetime(2026, 11, 3, 11, 30, tzinfo=nairobi)
    store.set_cursor("receipt", value)
    cursor = store.get_cursor("receipt")
    assert cursor == value
    assert cursor is not None
    assert cursor.utcoffset() == timedelta(hours=3)


def test_cursor_is_per_program(store: SqliteStateStore) -> None:
    store.set_cursor("order", T1)
    assert store.get_cursor("receipt") is None


def test_cursor_only_moves_forward(store: SqliteStateStore) -> None:
    store.set_cursor("order", T1)
    store.set_cursor("order", T0)
    assert store.get_cursor("order") == T1
    store.set_cursor("order", T2)
    assert store.get_cursor("order") == T2


def test_cursor_survives_reopening(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        s.set_cursor("order", T1)
    with SqliteStateStore(db_path) as s:
        assert s.get_cursor("order") == T1


# --- processed events ------------------------------------------------------------------------


def test_unknown_event_is_not_processed(store: SqliteStateStore) -> None:
    assert not store.is_processed("order", "ev1", T0)
    assert store.outcome_for("order", "ev1") is None
    assert not store.was_handled_before("order", "ev1")


def test_handled_event_is_processed_at_same_and_older_updated_at(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T1, "handled")
    assert store.is_processed("order", "ev1", T1)
    assert store.is_processed("order", "ev1", T0)


def test_handled_event_with_newer_updated_at_is_not_processed(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T0, "handled")
    assert not store.is_processed("order", "ev1", T1)
    assert store.was_handled_before("order", "ev1")


def test_failed_or_skipped_event_is_not_processed(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T0, "failed", error="boom")
    store.record_outcome("order", "ev2", T0, "skipped", error="no store")
    assert not store.is_processed("order", "ev1", T0)
    assert not store.is_processed("order", "ev2", T0)
    assert not store.was_handled_before("order", "ev1")


def test_processed_is_per_program(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T0, "handled")
    assert not store.is_processed("receipt", "ev1", T0)


def test_failure_of_newer_version_keeps_earlier_handling(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T0, "handled")
    store.record_outcome("order", "ev1", T1, "failed", error="handler raised")
    assert store.was_handled_before("order", "ev1")
    assert store.is_processed("order", "ev1", T0)
    assert not store.is_processed("order", "ev1", T1)
    assert [e.event_uid for e in store.failed_events("order")] == ["ev1"]


def test_outcome_for_returns_latest_record(store: SqliteStateStore) -> None:
    at = datetime(2026, 11, 4, 7, 0, tzinfo=timezone.utc)
    store.record_outcome("order", "ev1", T0, "failed", error="timeout")
    store.record_outcome("order", "ev1", T0, "handled", at=at)
    assert store.outcome_for("order", "ev1") == ProcessedEvent(
        program="order",
        event_uid="ev1",
        updated_at=T0,
        outcome="handled",
        at=at,
        error=None,
        attempts=2,
    )


def test_outcome_time_defaults_to_injected_clock(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T0, "handled")
    recorded = store.outcome_for("order", "ev1")
    assert recorded is not None
    assert recorded.at == CLOCK


def test_attempts_restart_for_newer_updated_at(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T0, "failed")
    store.record_outcome("order", "ev1", T0, "failed")
    first = store.outcome_for("order", "ev1")
    store.record_outcome("order", "ev1", T1, "failed")
    second = store.outcome_for("order", "ev1")
    assert first is not None
    assert first.attempts == 2
    assert second is not None
    assert (second.attempts, second.updated_at) == (1, T1)


def test_stale_outcome_does_not_overwrite_newer_version(store: SqliteStateStore) -> None:
    store.record_outcome("order", "ev1", T1, "failed", error="new version failed")
    store.record_outcome("order", "ev1", T0, "handled")
    latest = store.outcome_for("order", "ev1")
    assert latest is not None
    assert (latest.updated_at, latest.outcome) == (T1, "failed")
    assert store.was_handled_before("order", "ev1")
    assert not store.is_processed("order", "ev1", T1)


def test_failed_events_lists_only_events_whose_latest_outcome_failed(
    store: SqliteStateStore,
) -> None:
    store.record_outcome("order", "evA", T1, "failed", error="a")
    store.record_outcome("order", "evB", T0, "failed", error="b")
    store.record_outcome("order", "evC", T0, "failed", error="c")
    store.record_outcome("order", "evC", T0, "handled")
    store.record_outcome("receipt", "evD", T0, "failed")
    failed = store.failed_events("order")
    assert [(e.event_uid, e.error) for e in failed] == [("evB", "b"), ("evA", "a")]


def test_unknown_outcome_is_rejected(store: SqliteStateStore) -> None:
    with pytest.raises(ValueError, match="outcome"):
        store.record_outcome("order", "ev1", T0, "done")  # type: ignore[arg-type]  # wrong on purpose


# --- transactions ----------------------------------------------------------------------------


class Crash(Exception):
    pass


def record_then_crash(store: SqliteStateStore, event_uid: str, updated_at: datetime) -> None:
    with store.transaction():
        store.record_outcome("order", event_uid, updated_at, "handled")
        store.set_cursor("order", updated_at)
        raise Crash


def test_transaction_rolls_back_outcomes_and_cursor_on_exception(store: SqliteStateStore) -> None:
    store.set_cursor("order", T0)
    with pytest.raises(Crash):
        record_then_crash(store, "ev1", T1)
    assert store.outcome_for("order", "ev1") is None
    assert store.get_cursor("order") == T0


def test_transaction_commits_outcomes_and_cursor_together(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s, s.transaction():
        s.record_outcome("order", "ev1", T1, "handled")
        s.set_cursor("order", T1)
    with SqliteStateStore(db_path) as s:
        assert s.is_processed("order", "ev1", T1)
        assert s.get_cursor("order") == T1


def test_nested_transaction_rolls_back_only_inner_block(store: SqliteStateStore) -> None:
    with store.transaction():
        store.record_outcome("order", "ev1", T0, "handled")
        with pytest.raises(Crash):
            record_then_crash(store, "ev2", T1)
    assert store.is_processed("order", "ev1", T0)
    assert store.outcome_for("order", "ev2") is None
    assert store.get_cursor("order") is None


def test_uncommitted_transaction_is_invisible_to_another_store(
    store: SqliteStateStore, db_path: Path
) -> None:
    with SqliteStateStore(db_path) as other, store.transaction():
        store.record_outcome("order", "ev1", T0, "handled")
        assert other.outcome_for("order", "ev1") is None
    with SqliteStateStore(db_path) as other:
        assert other.is_processed("order", "ev1", T0)


def test_threads_can_share_one_store(store: SqliteStateStore) -> None:
    def work(worker: int) -> None:
        for i in range(25):
            with store.transaction():
                store.record_outcome("order", f"w{worker}e{i}", T0, "handled")
                store.set_cursor("order", T0 + timedelta(seconds=worker * 100 + i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.is_processed("order", f"w{w}e{i}", T0) for w in range(4) for i in range(25))
    assert store.get_cursor("order") == T0 + timedelta(seconds=324)


# --- last connection and run log -------------------------------------------------------------


def test_last_connection_round_trips(store: SqliteStateStore) -> None:
    assert store.last_connection() is None
    at = datetime(2026, 11, 4, 9, 15, tzinfo=timezone.utc)
    store.set_last_connection(at, "2.40.4")
    store.set_last_connection(at + timedelta(days=1), "2.41.1")
    assert store.last_connection() == (at + timedelta(days=1), "2.41.1")


def test_run_log_records_finished_and_unfinished_runs_newest_first(
    store: SqliteStateStore,
) -> None:
    first = store.start_run(["order", "receipt"])
    store.finish_run(
        first,
        fetched=10,
        handled=7,
        duplicates_skipped=1,
        failed=2,
        pushed=3,
        errors=["order ev1: boom", "order ev2: bang"],
    )
    second = store.start_run(("order",))
    runs = store.runs()
    assert [r.run_id for r in runs] == [second, first]
    assert runs[0].finished_at is None
    done = runs[1]
    assert done.programs == ("order", "receipt")
    assert (done.fetched, done.handled, done.duplicates_skipped, done.failed, done.pushed) == (
        10,
        7,
        1,
        2,
        3,
    )
    assert done.errors == ("order ev1: boom", "order ev2: bang")
    assert done.started_at == done.finished_at == CLOCK
    assert [r.run_id for r in store.runs(limit=1)] == [second]


def test_finishing_unknown_run_raises_state_error(store: SqliteStateStore) -> None:
    with pytest.raises(StateError, match="no run 99"):
        store.finish_run(
            99, fetched=0, handled=0, duplicates_skipped=0, failed=0, pushed=0, errors=()
        )


# --- runner lock -----------------------------------------------------------------------------


def test_second_runner_lock_raises_state_locked_error_naming_holder(db_path: Path) -> None:
    with (
        SqliteStateStore(db_path) as first,
        SqliteStateStore(db_path) as second,
        first.acquire_runner_lock("sync"),
    ):
        with pytest.raises(StateLockedError) as info:
            second.acquire_runner_lock("cli pull")
        assert info.value.holder_pid == os.getpid()
        assert info.value.holder_owner == "sync"
        assert f"process {os.getpid()}" in str(info.value)
        assert "Wait for it to finish" in str(info.value)
        assert isinstance(info.value, Dhis2Error)


def test_same_store_cannot_take_runner_lock_twice(store: SqliteStateStore) -> None:
    with store.acquire_runner_lock("sync"), pytest.raises(StateLockedError):
        store.acquire_runner_lock("sync")


def test_runner_lock_can_be_taken_again_after_release(db_path: Path) -> None:
    with SqliteStateStore(db_path) as first, SqliteStateStore(db_path) as second:
        lock = first.acquire_runner_lock("sync")
        lock.release()
        lock.release()  # idempotent
        assert not lock.held
        with second.acquire_runner_lock("sync") as again:
            assert again.held
    assert (db_path.parent / "state.sqlite.lock").exists()


def test_runner_lock_file_sits_next_to_database(store: SqliteStateStore, db_path: Path) -> None:
    with store.acquire_runner_lock("sync") as lock:
        assert lock.path == db_path.with_name("state.sqlite.lock")
        assert lock.path.read_text().splitlines()[:2] == [str(os.getpid()), "sync"]
