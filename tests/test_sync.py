"""SyncRunner against the offline DHIS2: once-only hand-over, retries, crashes, locks, e-mail."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs
import pytest

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.errors import ConfigError
from dhis2_lmis.lmis.models import ConsignmentReceipt, Customer, Item, Requisition
from dhis2_lmis.lmis.stock import PackingList, StockReceipt
from dhis2_lmis.run.state import SqliteStateStore, StateError, StateLockedError
from dhis2_lmis.run.sync import RunReport, SyncRunner
from dhis2_lmis.testing import FakeDhis2, LocalSmtpServer
from tests._lmis_world import (
    AMOX,
    CONSIGNMENT,
    FACILITY,
    HOUR,
    ORDER,
    ORDER_STAGE,
    RECEIPT,
    RECEIPT_STAGE,
    RECEIVED,
    ROOT,
    STR,
    T0,
    VERSIONS,
    add_stock_cards,
)
from tests._lmis_world import seed as seed_world
from tests._lmis_world import settings as world_settings

# --- the shared LMIS world (tests/_lmis_world.py) and a sync user ----------------------------

PASSWORD = "sync-Pa55word!x"
SMTP_PASSWORD = "smtp-S3cret-9"


def seed(fake: FakeDhis2) -> None:
    seed_world(fake)
    fake.add_user("sync", PASSWORD, org_units=(ROOT,))


def settings(fake: FakeDhis2, **sections: dict[str, object]) -> dict[str, object]:
    user = {"username": "sync", "password": PASSWORD, "max_attempts": 1}
    return world_settings(fake, **{**sections, "dhis2": {**user, **sections.get("dhis2", {})}})


def lmis_for(fake: FakeDhis2, **sections: dict[str, object]) -> Dhis2Lmis:
    return Dhis2Lmis(Dhis2Config.from_dict(settings(fake, **sections)))


def order(fake: FakeDhis2, uid: str, at: dt.datetime = T0, status: str = "COMPLETED") -> None:
    fake.add_event(
        uid,
        ORDER,
        FACILITY,
        status=status,
        program_stage=ORDER_STAGE,
        data_values={AMOX: "10"},
        occurred_at=at,
        updated_at=at,
    )


def receipt(fake: FakeDhis2, uid: str, consignment: str, at: dt.datetime = T0) -> None:
    fake.add_event(
        uid,
        RECEIPT,
        FACILITY,
        program_stage=RECEIPT_STAGE,
        data_values={CONSIGNMENT: consignment},
        occurred_at=at,
        updated_at=at,
    )


@pytest.fixture(params=VERSIONS)
def fake(request: pytest.FixtureRequest, fake_dhis2_factory: Callable[..., FakeDhis2]) -> FakeDhis2:
    server = fake_dhis2_factory(request.param, now=T0 + 48 * HOUR)
    seed(server)
    return server


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def state(state_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(state_path) as store:
        yield store


@attrs.define
class Recorder:
    """Handlers that remember every hand-over and fail for chosen events."""

    calls: list[tuple[str, bool]] = attrs.field(factory=list)
    fail_for: set[str] = attrs.field(factory=set)
    stock: dict[str, list[StockReceipt]] = attrs.field(factory=dict)

    def requisition(self, requisition: Requisition, /, *, is_update: bool) -> None:
        self._take(requisition.event.uid, is_update)

    def receipt(
        self, receipt: ConsignmentReceipt, /, *, is_update: bool
    ) -> Iterable[StockReceipt] | None:
        self._take(receipt.event.uid, is_update)
        return self.stock.get(receipt.event.uid)

    def _take(self, uid: str, is_update: bool) -> None:
        self.calls.append((uid, is_update))
        if uid in self.fail_for:
            raise RuntimeError(f"mSupply refused {uid}")

    @property
    def uids(self) -> list[str]:
        return [uid for uid, _ in self.calls]


def runner_for(lmis: Dhis2Lmis, state: SqliteStateStore, recorder: Recorder) -> SyncRunner:
    return SyncRunner(
        lmis,
        state,
        on_requisition=recorder.requisition,
        on_receipt=recorder.receipt,
        notify=False,
    )


# --- once, and only once ------------------------------------------------------------------------


def test_every_completed_event_is_handled_once(fake: FakeDhis2, state: SqliteStateStore) -> None:
    for n in range(4):
        order(fake, f"Order00000{n}", T0 + n * HOUR)
    order(fake, "OrderActive", T0, status="ACTIVE")
    receipt(fake, "Receipt0001", "CN-1")
    recorder = Recorder()
    report = runner_for(lmis_for(fake), state, recorder).run_once()
    orders = [f"Order00000{n}" for n in range(4)]
    assert sorted(recorder.uids) == [*orders, "Receipt0001"]
    assert (report.fetched, report.handled, report.failed, report.errors) == (5, 5, 0, ())
    assert all(not is_update for _, is_update in recorder.calls)


def test_second_run_skips_duplicates_with_at_most_two_requests_per_program(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(4):
        order(fake, f"Order00000{n}", T0 + n * dt.timedelta(minutes=1))
    receipt(fake, "Receipt0001", "CN-1")
    recorder = Recorder()
    runner = runner_for(lmis_for(fake), state, recorder)
    runner.run_once()
    fake.clear_requests()
    second = runner.run_once()
    assert recorder.uids.count("Order000003") == 1
    assert (second.handled, second.duplicates_skipped) == (0, 5)
    assert len(fake.requests) <= 2 * 2


def test_run_log_keeps_the_counts(fake: FakeDhis2, state: SqliteStateStore) -> None:
    order(fake, "Order000001")
    report = runner_for(lmis_for(fake), state, Recorder()).run_once()
    (logged,) = state.runs()
    assert (logged.fetched, logged.handled) == (report.fetched, report.handled) == (1, 1)
    assert logged.finished_at is not None


def test_recompleted_event_is_handed_over_again_as_update(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001")
    order(fake, "Order000002")
    recorder = Recorder()
    runner = runner_for(lmis_for(fake), state, recorder)
    runner.run_once()
    fake.touch_event("Order000001", data_values={AMOX: "12"})
    report = runner.run_once()
    assert recorder.calls[-1] == ("Order000001", True)
    assert recorder.uids.count("Order000002") == 1
    assert (report.handled, report.duplicates_skipped) == (1, 1)


def test_runner_without_receipt_handler_syncs_orders_only(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001")
    receipt(fake, "Receipt0001", "CN-1")
    recorder = Recorder()
    report = SyncRunner(lmis_for(fake), state, on_requisition=recorder.requisition).run_once()
    assert recorder.uids == ["Order000001"]
    assert report.fetched == 1
    assert state.get_cursor("receipt") is None


def test_record_with_problems_is_handed_over_and_reported(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    fake.add_data_element("DeUnknown01", "IBU400", "Ibuprofen", domain_type="TRACKER")
    fake.add_event(
        "Order000001",
        ORDER,
        FACILITY,
        program_stage=ORDER_STAGE,
        data_values={AMOX: "10", "DeUnknown01": "4"},
        updated_at=T0,
    )
    lmis = Dhis2Lmis(
        Dhis2Config.from_dict(settings(fake, lmis={"name_field": "Dhis2Code"})),
        items=(Item("I-AMOX", "Amoxicillin 250mg", universal_code="AMOX250"),),
        customers=(Customer("C-FAC-A", "Facility A", custom_fields={"Dhis2Code": FACILITY}),),
    )
    recorder = Recorder()
    report = runner_for(lmis, state, recorder).run_once()
    assert recorder.uids == ["Order000001"]
    assert (report.handled, report.failed) == (1, 0)
    (error,) = report.errors
    assert "Order000001" in error and "IBU400" in error


# --- failures are retried, never skipped -------------------------------------------------------


def test_failed_events_are_retried_next_run_and_only_them(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(5):
        order(fake, f"Order00000{n}", T0 + n * HOUR)  # an hour apart: well beyond the overlap
    recorder = Recorder(fail_for={"Order000001", "Order000003"})
    runner = runner_for(lmis_for(fake), state, recorder)
    first = runner.run_once()
    assert (first.handled, first.failed) == (3, 2)
    assert any("Order000001" in e and "mSupply refused" in e for e in first.errors)
    assert state.outcome_for("order", "Order000001").outcome == "failed"  # type: ignore[union-attr]

    recorder.fail_for.clear()
    recorder.calls.clear()
    second = runner.run_once()
    assert sorted(recorder.uids) == ["Order000001", "Order000003"]
    assert (second.handled, second.failed, second.duplicates_skipped) == (2, 0, 3)

    recorder.calls.clear()
    third = runner.run_once()
    assert recorder.uids == []
    assert third.handled == 0


def test_cursor_stays_at_or_before_the_earliest_failure(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(3):
        order(fake, f"Order00000{n}", T0 + n * HOUR)
    runner = runner_for(lmis_for(fake), state, Recorder(fail_for={"Order000001"}))
    runner.run_once()
    cursor = state.get_cursor("order")
    assert cursor is not None
    assert cursor.replace(tzinfo=None) == T0


def test_failed_event_is_retried_even_if_the_cursor_moved_past_it(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001", T0)
    recorder = Recorder(fail_for={"Order000001"})
    runner = runner_for(lmis_for(fake), state, recorder)
    runner.run_once()
    cursor_after = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    state.set_cursor("order", cursor_after)  # e.g. moved by an older version of the runner
    recorder.fail_for.clear()
    report = runner.run_once()
    assert recorder.uids == ["Order000001", "Order000001"]
    assert report.handled == 1


def test_crash_between_handler_and_record_hands_that_event_over_again(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    class Killed(BaseException):
        """Stands in for the process dying: not an Exception, so nothing may catch it."""

    for n in range(4):
        order(fake, f"Order00000{n}", T0 + n * HOUR)
    done: list[str] = []

    def dies_after_work(requisition: Requisition, /, *, is_update: bool) -> None:
        done.append(requisition.event.uid)  # the work happened...
        if requisition.event.uid == "Order000002":
            raise Killed  # ...and the process died before the outcome was recorded

    lmis = lmis_for(fake)
    with pytest.raises(Killed):
        SyncRunner(lmis, state, on_requisition=dies_after_work).run_once()
    assert done == ["Order000000", "Order000001", "Order000002"]
    assert state.outcome_for("order", "Order000002") is None

    recorder = Recorder()
    report = SyncRunner(lmis, state, on_requisition=recorder.requisition).run_once()
    assert recorder.calls == [("Order000002", False), ("Order000003", False)]
    assert report.handled == 2  # Order000000 lies before the cursor: not even re-read


# --- state files: locks and corruption ---------------------------------------------------------


def test_second_runner_at_the_same_time_raises_state_locked_error(
    fake: FakeDhis2, state: SqliteStateStore, state_path: Path
) -> None:
    order(fake, "Order000001")
    lmis = lmis_for(fake)
    raised: list[StateLockedError] = []

    def starts_a_second_runner(requisition: Requisition, /, *, is_update: bool) -> None:
        with SqliteStateStore(state_path) as other_store:
            other = SyncRunner(lmis, other_store, on_requisition=Recorder().requisition)
            with pytest.raises(StateLockedError) as info:
                other.run_once()
            raised.append(info.value)

    SyncRunner(lmis, state, on_requisition=starts_a_second_runner).run_once()
    (error,) = raised
    assert "another dhis2-lmis runner" in str(error)
    assert error.holder_owner == "sync"


def test_corrupt_state_file_is_a_state_error_and_left_untouched(state_path: Path) -> None:
    garbage = b"this is not a database\x00" * 200
    state_path.write_bytes(garbage)
    with pytest.raises(StateError):
        SqliteStateStore(state_path)
    assert state_path.read_bytes() == garbage


def test_locked_state_database_is_a_state_error_before_any_hand_over(
    fake: FakeDhis2, state_path: Path
) -> None:
    order(fake, "Order000001")
    recorder = Recorder()
    with SqliteStateStore(state_path, busy_timeout_s=0.05) as store:
        runner = runner_for(lmis_for(fake), store, recorder)
        blocker = sqlite3.connect(state_path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # another program holds the database
            with pytest.raises(StateError, match="locked"):
                runner.run_once()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert recorder.calls == []


# --- fetch trouble -----------------------------------------------------------------------------


def test_connection_failure_is_reported_and_leaves_the_cursor(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001", T0)
    recorder = Recorder()
    runner = runner_for(lmis_for(fake), state, recorder)
    runner.run_once()
    cursor = state.get_cursor("order")
    order(fake, "Order000002", T0 + HOUR)
    receipt(fake, "Receipt0001", "CN-1", T0 + HOUR)
    fake.inject("GET", "/api/tracker/events", fault="drop", times=1)  # the order fetch only

    report = runner.run_once()
    assert report.errors and "[order] fetch" in report.errors[0]
    assert state.get_cursor("order") == cursor
    assert "Receipt0001" in recorder.uids  # the next program still ran
    assert "Order000002" not in recorder.uids

    again = runner.run_once()
    assert recorder.uids.count("Order000002") == 1
    assert (again.handled, again.errors) == (1, ())


def test_server_down_for_every_request_returns_a_report_with_errors(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001")
    fake.inject("*", "/api/*", status=503, times=50)
    report = runner_for(lmis_for(fake), state, Recorder()).run_once()
    assert [e.split(":")[0] for e in report.errors] == ["[order] fetch", "[receipt] fetch"]
    assert state.get_cursor("order") is None
    assert state.get_cursor("receipt") is None


def test_wrong_password_is_reported_without_the_password(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001")
    lmis = lmis_for(fake, dhis2={"password": "wrong-" + PASSWORD})
    report = runner_for(lmis, state, Recorder()).run_once()
    assert len(report.errors) == 1
    assert not any(PASSWORD in e for e in report.errors)


def test_refused_credentials_stop_the_whole_run_after_one_request(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    # DHIS2 locks an account after a few failed logins: one refusal must end the run
    order(fake, "Order000001")
    fake.clear_requests()
    lmis = lmis_for(fake, dhis2={"password": "wrong-" + PASSWORD})
    report = runner_for(lmis, state, Recorder()).run_once()
    assert len(fake.requests) == 1
    assert report.stopped == "authentication"
    assert report.not_synced == ("order", "receipt")
    assert not report.ok
    assert state.get_cursor("order") is None


# --- stock receipts ----------------------------------------------------------------------------


def stock_card(fake: FakeDhis2, code: str = "AMOX250") -> None:
    add_stock_cards(fake, code)


def test_receipt_handler_stock_receipts_are_pushed_once(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    stock_card(fake)
    receipt(fake, "Receipt0001", "CN-2026-0042")
    line = StockReceipt(FACILITY, "AMOX250", 25, reference="CN-2026-0042")
    recorder = Recorder(stock={"Receipt0001": [line]})
    runner = runner_for(lmis_for(fake), state, recorder)
    report = runner.run_once()
    assert (report.handled, report.pushed, report.errors) == (1, 1, ())
    written = fake.events[line.event_uid]
    assert written.program == STR and written.data_values[RECEIVED] == "25"
    again = runner.run_once()
    assert (again.pushed, again.duplicates_skipped) == (0, 1)


def test_failed_stock_push_fails_the_receipt_event_until_it_succeeds(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    receipt(fake, "Receipt0001", "CN-7")
    line = StockReceipt(FACILITY, "PARA500", 3, reference="CN-7")
    recorder = Recorder(stock={"Receipt0001": [line]})
    runner = runner_for(lmis_for(fake), state, recorder)
    first = runner.run_once()
    assert (first.failed, first.pushed) == (1, 0)
    assert any("stock push failed" in e and "PARA500" in e for e in first.errors)

    stock_card(fake, "PARA500")  # the missing stock card is created in DHIS2
    second = runner.run_once()
    assert (second.handled, second.pushed) == (1, 1)
    assert recorder.calls == [("Receipt0001", False), ("Receipt0001", False)]


# --- the error e-mail (a tiny SMTP server, as in tests/test_notify.py) ---------------------------


def mailing_lmis(fake: FakeDhis2, port: int) -> Dhis2Lmis:
    return lmis_for(
        fake,
        lmis={"error_emails": "stock@example.org; it@example.org"},
        smtp={
            "host": "127.0.0.1",
            "port": port,
            "username": "mailer",
            "password": SMTP_PASSWORD,
            "sender": "dhis2-lmis@example.org",
            "timeout": 5.0,
        },
    )


def test_errors_of_a_run_go_out_in_one_mail_without_secrets(
    fake: FakeDhis2, state: SqliteStateStore, fake_smtp: LocalSmtpServer
) -> None:
    for n in range(3):
        order(fake, f"Order00000{n}", T0 + n * HOUR)

    def leaky(requisition: Requisition, /, *, is_update: bool) -> None:
        raise RuntimeError(f"login {PASSWORD} / smtp {SMTP_PASSWORD} rejected")

    runner = SyncRunner(mailing_lmis(fake, fake_smtp.port), state, on_requisition=leaky)
    report = runner.run_once()
    assert report.failed == 3
    (mail,) = fake_smtp.messages
    assert set(mail.rcpt_tos) == {"stock@example.org", "it@example.org"}
    body = mail.parsed().get_content()
    assert "Order000000" in body and "Order000002" in body
    for secret in (PASSWORD, SMTP_PASSWORD):
        assert secret not in body
        assert secret.encode() not in mail.data
        assert not any(secret in e for e in report.errors)


def test_clean_run_sends_no_mail(
    fake: FakeDhis2, state: SqliteStateStore, fake_smtp: LocalSmtpServer
) -> None:
    order(fake, "Order000001")
    SyncRunner(
        mailing_lmis(fake, fake_smtp.port), state, on_requisition=Recorder().requisition
    ).run_once()
    assert fake_smtp.messages == []


def test_unreachable_smtp_server_only_logs(
    fake: FakeDhis2, state: SqliteStateStore, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # closed again: nothing listens there
    order(fake, "Order000001")
    recorder = Recorder(fail_for={"Order000001"})
    caplog.set_level(logging.WARNING, logger="dhis2_lmis.run.notify")
    runner = SyncRunner(mailing_lmis(fake, port), state, on_requisition=recorder.requisition)
    report = runner.run_once()
    assert report.failed == 1
    assert any("could not e-mail" in r.getMessage() for r in caplog.records)


# --- the schedule ------------------------------------------------------------------------------


def test_run_forever_sleeps_interval_plus_jitter_between_runs(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    order(fake, "Order000001")
    waits: list[float] = []
    recorder = Recorder()
    runner = SyncRunner(
        lmis_for(fake), state, on_requisition=recorder.requisition, sleep=waits.append
    )
    seen: list[tuple[int, int]] = []  # (handled, waits so far) as each report arrives
    reports = runner.run_forever(
        "1h",
        jitter=dt.timedelta(minutes=5),
        max_runs=2,
        on_report=lambda r: seen.append((r.handled, len(waits))),
    )
    assert [r.handled for r in reports] == [1, 0]
    assert seen == [(1, 0), (0, 1)]  # each report before the wait that follows its run
    (wait,) = waits
    assert 3600 <= wait <= 3600 + 300


def test_stop_during_the_wait_ends_the_loop(fake: FakeDhis2, state: SqliteStateStore) -> None:
    runner = SyncRunner(
        lmis_for(fake),
        state,
        on_requisition=Recorder().requisition,
        sleep=lambda seconds: runner.stop(),  # a stop() from elsewhere while waiting
    )
    assert len(runner.run_forever(dt.timedelta(days=1))) == 1


def test_sigterm_stops_after_the_current_event_and_restores_the_handler(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(3):
        order(fake, f"Order00000{n}", T0 + n * HOUR)
    handed: list[str] = []

    def signalled(requisition: Requisition, /, *, is_update: bool) -> None:
        handed.append(requisition.event.uid)
        if len(handed) == 1:
            signal.raise_signal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    runner = SyncRunner(lmis_for(fake), state, on_requisition=signalled, sleep=lambda s: None)
    reports = runner.run_forever("1d", max_runs=5)
    assert signal.getsignal(signal.SIGTERM) is before
    assert handed == ["Order000000"]
    assert [r.handled for r in reports] == [1]
    runner.run_once()  # the rest waits for the next start
    assert handed == ["Order000000", "Order000001", "Order000002"]


def test_unknown_interval_is_a_config_error(fake: FakeDhis2, state: SqliteStateStore) -> None:
    runner = SyncRunner(lmis_for(fake), state)
    with pytest.raises(ValueError, match="interval"):
        runner.run_forever("sometimes")


# --- the report --------------------------------------------------------------------------------


def test_run_report_reads_well_as_text_and_html() -> None:
    at = dt.datetime(2026, 11, 4, 6, 0, tzinfo=dt.timezone.utc)
    report = RunReport(
        fetched=3,
        handled=1,
        duplicates_skipped=1,
        failed=1,
        pushed=0,
        errors=("[order] event X: <bad> & worse",),
        started_at=at,
        finished_at=at + dt.timedelta(seconds=2),
        programs=("order",),
    )
    text = str(report)
    assert "3 fetched, 1 handled, 1 duplicates skipped, 1 failed" in text
    assert "[order] event X: <bad> & worse" in text
    assert "&lt;bad&gt; &amp; worse" in report._repr_html_()
    assert not report.ok


# --- docs/sync.md: "handled" means finished ------------------------------------------------------


def test_a_receipt_not_on_the_packing_list_fails_is_mailed_and_is_pushed_once_listed(
    fake: FakeDhis2, state: SqliteStateStore, fake_smtp: LocalSmtpServer
) -> None:
    # the rule of docs/sync.md: a handler that raises has not handled the event; the run
    # lists it in the error e-mail and every later run tries it again until it succeeds
    stock_card(fake)
    receipt(fake, "Receipt0001", "CN-2026-0042")
    packing = PackingList.from_mapping({})

    def on_receipt(
        receipt: ConsignmentReceipt, /, *, is_update: bool
    ) -> Iterable[StockReceipt] | None:
        return packing.stock_receipts_for(receipt)

    lmis = mailing_lmis(fake, fake_smtp.port)
    runner = SyncRunner(lmis, state, on_receipt=on_receipt)
    first = runner.run_once(["receipt"])
    assert (first.handled, first.failed, first.pushed) == (0, 1, 0)
    assert not first.ok
    (mail,) = fake_smtp.messages
    assert "CN-2026-0042 (receipt event Receipt0001) is not on the packing list" in (
        mail.parsed().get_content()
    )
    stored = state.outcome_for("receipt", "Receipt0001")
    assert stored is not None and stored.outcome == "failed"
    assert runner.run_once(["receipt"]).failed == 1  # still missing: still failed, not dropped

    packing = PackingList.from_mapping({"CN-2026-0042": [("AMOX250", 25)]})
    listed = runner.run_once(["receipt"])
    assert (listed.handled, listed.failed, listed.pushed) == (1, 0, 1)
    again = runner.run_once(["receipt"])
    assert (again.handled, again.duplicates_skipped, again.pushed) == (0, 1, 0)
    received = [e for e in fake.events.values() if RECEIVED in e.data_values]
    assert [e.data_values[RECEIVED] for e in received] == ["25"]


def test_a_stop_mid_run_reports_what_was_left_and_the_next_run_does_it(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(3):
        order(fake, f"Order00000{n}", T0 + n * HOUR)
    receipt(fake, "Receipt0001", "CN-1")
    recorder = Recorder()
    stops = [True]  # Ctrl-C once, during the first requisition

    def on_requisition(requisition: Requisition, /, *, is_update: bool) -> None:
        recorder.requisition(requisition, is_update=is_update)
        if stops:
            stops.pop()
            runner.stop()

    runner = SyncRunner(
        lmis_for(fake), state, on_requisition=on_requisition, on_receipt=recorder.receipt
    )
    first = runner.run_once()
    assert (first.handled, first.stopped, first.not_synced) == (
        1,
        "interrupted",
        ("order", "receipt"),
    )
    assert not first.ok
    assert "interrupted: order, receipt not synced to the end" in str(first)
    second = runner.run_once()
    assert (second.handled, second.duplicates_skipped, second.stopped) == (3, 1, None)
    assert second.ok
    assert sorted(recorder.uids) == ["Order000000", "Order000001", "Order000002", "Receipt0001"]


def test_stock_on_hand_without_its_row_is_refused_not_empty(fake: FakeDhis2) -> None:
    # an empty answer would read as "no stock anywhere"
    lmis = lmis_for(fake, data_elements={"stock_on_hand": {"active": False}})
    fake.clear_requests()
    with pytest.raises(ConfigError, match=r"data_elements\.stock_on_hand is not configured"):
        lmis.fetch_stock_on_hand()
    assert fake.requests == []


# --- a first run with [sync] workers --------------------------------------------------------------


def test_a_first_run_with_workers_hands_each_event_over_once_and_moves_the_cursor_at_the_end(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(30):
        order(fake, f"Order{n:06d}", T0 + n * HOUR)
    recorder = Recorder()
    lmis = lmis_for(fake, sync={"workers": 3, "page_size": 5})
    runner = runner_for(lmis, state, recorder)
    first = runner.run_once()
    assert sorted(recorder.uids) == [f"Order{n:06d}" for n in range(30)]
    assert (first.handled, first.failed) == (30, 0)
    cursor = state.get_cursor("order")
    assert cursor is not None and cursor.replace(tzinfo=None) == T0 + 29 * HOUR
    order(fake, "OrderLater1", T0 + 30 * HOUR)
    second = runner.run_once()  # a cursor now: one worker, from the cursor on
    assert recorder.uids.count("OrderLater1") == 1 and len(recorder.uids) == 31
    assert second.handled == 1


def test_a_first_run_with_workers_stopped_part_way_leaves_no_cursor_and_loses_nothing(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(30):
        order(fake, f"Order{n:06d}", T0 + n * HOUR)
    recorder = Recorder()

    def on_requisition(requisition: Requisition, /, *, is_update: bool) -> None:
        recorder.requisition(requisition, is_update=is_update)
        if len(recorder.calls) == 7:
            runner.stop()  # Ctrl-C in the middle of a parallel first run

    lmis = lmis_for(fake, sync={"workers": 3, "page_size": 5})
    runner = SyncRunner(lmis, state, on_requisition=on_requisition, notify=False)
    first = runner.run_once()
    assert (first.handled, first.stopped) == (7, "interrupted")
    assert state.get_cursor("order") is None  # events came in no order: none may be passed
    second = runner.run_once()
    assert (second.handled, second.duplicates_skipped) == (23, 7)
    assert sorted(recorder.uids) == [f"Order{n:06d}" for n in range(30)]
    assert state.get_cursor("order") is not None


def test_a_failure_in_a_first_run_with_workers_leaves_no_cursor_and_is_retried(
    fake: FakeDhis2, state: SqliteStateStore
) -> None:
    for n in range(20):
        order(fake, f"Order{n:06d}", T0 + n * HOUR)
    recorder = Recorder(fail_for={"Order000004"})
    runner = runner_for(lmis_for(fake, sync={"workers": 4, "page_size": 5}), state, recorder)
    first = runner.run_once()
    assert (first.handled, first.failed) == (19, 1)
    assert state.get_cursor("order") is None
    recorder.fail_for.clear()
    recorder.calls.clear()
    second = runner.run_once()
    assert recorder.uids == ["Order000004"]
    assert (second.handled, second.duplicates_skipped) == (1, 19)
    cursor = state.get_cursor("order")
    assert cursor is not None and cursor.replace(tzinfo=None) == T0 + 19 * HOUR
