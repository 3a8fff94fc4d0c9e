"""The fault matrix: every public network operation x every FakeDhis2 fault x four versions.

Each cell first runs the operation cleanly on an identically seeded fake (the baseline), then
injects one fault (``times=1``) on the operation's main endpoint and runs it again:

* ``survived``: the same result as the baseline and the same server state.
* ``survived-as-update``: the same server state; the write reached DHIS2 before the connection
  broke and the retry repeated it, so DHIS2 counts the repeat as updated/ignored rather than
  imported (a data value upsert cannot double).
* an error type: that error (raised, or reported where the operation never raises:
  ``test_connection`` returns a failed ``ConnectionCheck`` and ``run_once`` lists the error in
  its report) and nothing half-written: the fake's events and data values are either exactly
  as before, or (when the server acted before the reply broke) exactly the baseline's; and a
  re-run of the same operation leaves every value and event there exactly once.

``EXPECTED`` is the one table of outcomes; ``docs/reliability.md`` renders the same table
(``test_docs_table_matches_expected`` keeps the two equal). Retries never really sleep: every
session gets a recording no-op ``sleep``. The only real waiting is the ``delay`` fault itself
(the fake sleeps past a 0.25 s read timeout) and waiting for that delayed request to finish.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.auth import BodyAuth
from dhis2_lmis.dhis2.retry import RetryPolicy
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import (
    AuthenticationError,
    Dhis2ConnectionError,
    Dhis2Error,
    ResponseFormatError,
    ServerError,
)
from dhis2_lmis.lmis.models import ConsignmentReceipt, Requisition
from dhis2_lmis.lmis.stock import StockReceipt
from dhis2_lmis.run.state import SqliteStateStore
from dhis2_lmis.run.sync import SyncRunner
from dhis2_lmis.testing import FakeDhis2
from tests._lmis_world import (
    AMOX,
    CONSIGNMENT,
    CUSTOMERS,
    DATA_SET,
    FACILITY,
    HOUR,
    ITEMS,
    ORDER,
    ORDER_STAGE,
    PARA,
    RECEIPT,
    RECEIPT_STAGE,
    RECEIVED,
    ROOT,
    SOH,
    STORES,
    STR,
    STR_STAGE,
    T0,
    TE_AMOX,
    TE_PARA,
    add_stock_cards,
    settings,
)
from tests._lmis_world import seed as seed_world

# --- the matrix ---------------------------------------------------------------------------------

VERSIONS = ("2.37", "2.40", "2.41", "2.42")
OPERATIONS = (
    "test_connection",
    "fetch_completed_requisitions",
    "fetch_completed_receipts",
    "fetch_stock_transactions",
    "pull",
    "fetch_stock_on_hand",
    "push_data_values",
    "push_stock_receipts",
    "SyncRunner.run_once",
)
FAULTS = (
    "503",
    "502",
    "504",
    "429 Retry-After",
    "drop",
    "drop_after",
    "delay",
    "html_login",
    "truncated_json",
    "500 WebMessage",
    "401 mid-run",
)
SURVIVED = "survived"
SURVIVED_AS_UPDATE = "survived-as-update"

# Every cell of the matrix; the same on all four versions (the test checks each version).
EXPECTED: dict[tuple[str, str], str] = {}
for _operation in OPERATIONS:
    EXPECTED.update(
        {
            # Proxy statuses: every operation here is idempotent (GETs, data value upserts,
            # tracker imports with derived UIDs under CREATE_AND_UPDATE), so all are retried.
            (_operation, "503"): SURVIVED,
            (_operation, "502"): SURVIVED,
            (_operation, "504"): SURVIVED,
            # 429 is retried for any method, after exactly the Retry-After the proxy asked for.
            (_operation, "429 Retry-After"): SURVIVED,
            # Closed before acting: retried (a read failure, but the call is idempotent).
            (_operation, "drop"): SURVIVED,
            # Acted, then closed: retried because idempotent; the write lands once.
            (_operation, "drop_after"): SURVIVED,
            # Past the read timeout: retried; the late original is a harmless repeat.
            (_operation, "delay"): SURVIVED,
            # A 200 login page is an authentication failure, never retried (account lockout).
            (_operation, "html_login"): "AuthenticationError",
            # Half a body is unreadable; the decode happens after the retry loop, so no retry.
            (_operation, "truncated_json"): "ResponseFormatError",
            # A 500 is DHIS2 itself failing (not a proxy): never retried.
            (_operation, "500 WebMessage"): "ServerError",
            # Expired OAuth2 token (2.37-2.41) or session cookie (2.42): one refresh or login,
            # one resend.
            (_operation, "401 mid-run"): SURVIVED,
        }
    )
# The retried data value import repeats values already stored: DHIS2 counts them as updated
# (before 2.39.5/2.40.3) or ignored, not imported. Stored values are identical to the baseline.
EXPECTED["push_data_values", "drop_after"] = SURVIVED_AS_UPDATE
# test_connection never raises (its contract); the error type is read from the failed
# ConnectionCheck. SyncRunner.run_once reports fetch errors in RunReport.errors and carries on
# with the next program (except refused credentials, which stop the run); the cursor stays, so
# the next run reads the missed events.

# What the session's message of each error type says (to recognise a reported error).
SIGNATURES: dict[str, str] = {
    "AuthenticationError": "HTML page instead of JSON",
    "ResponseFormatError": "not valid JSON",
    "ServerError": "DHIS2 (or its proxy) failed",
    "Dhis2TimeoutError": "no answer within",
    "Dhis2ConnectionError": "connection broke before an answer",
}
ERROR_TYPES: dict[str, type[Dhis2Error]] = {
    "AuthenticationError": AuthenticationError,
    "ResponseFormatError": ResponseFormatError,
    "ServerError": ServerError,
    "Dhis2ConnectionError": Dhis2ConnectionError,
}

# --- the shared LMIS world (tests/_lmis_world.py), its events and a user ----------------------

USER, PASSWORD = "lmis", "Fault-Matrix-Pa55"
CLIENT_ID, CLIENT_SECRET = "lmis-client", "client-S3cret-x"
WEBMESSAGE_500 = json.dumps(
    {
        "httpStatus": "Internal Server Error",
        "httpStatusCode": 500,
        "status": "ERROR",
        "message": "Could not get JDBC Connection",
    }
)
PAGE_SIZE = 2  # every fetch reads at least two pages, so a fault can land between them
NORMAL_TIMEOUT = 10.0
DELAY_TIMEOUT, DELAY_SECONDS = 0.25, 0.6
RETRY_AFTER = 7


def seed(fake: FakeDhis2) -> None:
    """The shared world, its AMOX and PARA stock cards with three stock events, three completed
    orders (and an open one), three receipts, and the matrix's user (an OAuth2 client to 2.41)."""
    seed_world(fake)
    fake.add_user(USER, PASSWORD, org_units=(ROOT,))
    if fake.server_version.minor <= 41:
        fake.add_oauth_client(CLIENT_ID, CLIENT_SECRET)
    add_stock_cards(fake, "AMOX250", "PARA500")
    for n, (te, soh) in enumerate(((TE_AMOX, 100), (TE_PARA, 50), (TE_AMOX, 90))):
        fake.add_event(
            f"StrEvent00{n}",
            STR,
            FACILITY,
            program_stage=STR_STAGE,
            tracked_entity=te,
            data_values={SOH: soh},
            occurred_at=T0 + n * HOUR,
            updated_at=T0 + n * HOUR,
        )
    for n in range(3):
        fake.add_event(
            f"OrderEvnt0{n}",
            ORDER,
            FACILITY,
            program_stage=ORDER_STAGE,
            data_values={AMOX: 10 + n, PARA: 20 + n},
            occurred_at=T0 + n * HOUR,
            updated_at=T0 + n * HOUR,
        )
    fake.add_event(
        "OrderOpen00", ORDER, FACILITY, status="ACTIVE", program_stage=ORDER_STAGE,
        data_values={AMOX: 1}, occurred_at=T0, updated_at=T0,
    )  # fmt: skip
    for n in range(3):
        fake.add_event(
            f"RcptEvent0{n}",
            RECEIPT,
            FACILITY,
            program_stage=RECEIPT_STAGE,
            data_values={CONSIGNMENT: f"CN-{n + 1}", AMOX: 30 + n},
            occurred_at=T0 + n * HOUR,
            updated_at=T0 + n * HOUR,
        )


def new_fake(version: str) -> FakeDhis2:
    fake = FakeDhis2(version=version, now=T0 + 48 * HOUR)
    seed(fake)
    return fake.start()


def oauth(version: str) -> bool:
    """OAuth2 password grant on 2.37-2.41; 2.42 removed /uaa, so cookie login there."""
    return version != "2.42"


def build_lmis(fake: FakeDhis2, version: str, sleeps: list[float], timeout: float) -> Dhis2Lmis:
    """The facade over a session that records its retry sleeps instead of sleeping."""
    server: dict[str, object] = {
        "url": fake.url,
        "auth": "body",
        "username": USER,
        "password": PASSWORD,
        "timeout": timeout,
        "max_attempts": 4,
    }
    if oauth(version):
        server.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    config = Dhis2Config.from_dict(
        settings(
            fake,
            dhis2=server,
            lmis={"name_field": "Dhis2Code", "data_set": DATA_SET},
            sync={"page_size": PAGE_SIZE},
        )
    )
    auth = BodyAuth(
        USER,
        PASSWORD,
        client_id=CLIENT_ID if oauth(version) else None,
        client_secret=CLIENT_SECRET if oauth(version) else None,
    )
    session = Dhis2Session(
        fake.url,
        auth,
        timeout=timeout,
        connect_timeout=5.0,
        retry=RetryPolicy(attempts=config.dhis2.max_attempts),
        sleep=sleeps.append,
    )
    return Dhis2Lmis(config, items=ITEMS, customers=CUSTOMERS, stores=STORES, session=session)


# --- operations ---------------------------------------------------------------------------------


@dataclass
class Cell:
    """What one run of an operation needs and leaves behind."""

    fake: FakeDhis2
    lmis: Dhis2Lmis
    tmp: Path
    expire_mid_run: bool = False
    handed_over: list[tuple[str, bool]] = field(default_factory=list)

    def warm_up_and_expire(self) -> None:
        """Authenticate once, then expire every token and session: the next call gets a 401."""
        if self.expire_mid_run:
            _ = self.lmis.session.server_info
            self.fake.expire_tokens()


def _drain(cell: Cell, records: Iterator[Any]) -> list[Any]:
    """Consume a fetch; with ``expire_mid_run`` the tokens expire after the first record."""
    out = []
    for record in records:
        if cell.expire_mid_run and not out:
            cell.fake.expire_tokens()
        out.append(record)
    return out


def op_test_connection(cell: Cell) -> object:
    cell.warm_up_and_expire()
    check = cell.lmis.test_connection()
    return (check.ok, check.message, check.server_version, check.user)


def op_requisitions(cell: Cell) -> object:
    return _drain(cell, cell.lmis.fetch_completed_requisitions())


def op_receipts(cell: Cell) -> object:
    return _drain(cell, cell.lmis.fetch_completed_receipts())


def op_stock_transactions(cell: Cell) -> object:
    return _drain(cell, cell.lmis.fetch_stock_transactions())


def op_pull(cell: Cell) -> object:
    return _drain(cell, cell.lmis.pull("order"))


def op_stock_on_hand(cell: Cell) -> object:
    # every request of this fetch happens before its first record: expire before it starts
    cell.warm_up_and_expire()
    return list(cell.lmis.fetch_stock_on_hand())


def op_push_data_values(cell: Cell) -> object:
    cell.warm_up_and_expire()
    builder = cell.lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("SOH_AMOX250", 340)
    builder.add("SOH_PARA500", 12)
    summary = cell.lmis.push_data_values(builder)
    return (summary.status, summary.imported, summary.updated, summary.ignored, summary.conflicts)


STOCK_RECEIPTS = (
    StockReceipt(FACILITY, "AMOX250", 25, "CI-0001"),
    StockReceipt(FACILITY, "PARA500", 5, "CI-0001"),
)


def op_push_stock_receipts(cell: Cell) -> object:
    cell.warm_up_and_expire()
    report = cell.lmis.push_stock_receipts(STOCK_RECEIPTS)
    return tuple(
        (o.status, o.event_uid, o.stock_on_hand_before, o.stock_on_hand_after) for o in report
    )


def op_run_once(cell: Cell) -> object:
    def on_requisition(requisition: Requisition, /, *, is_update: bool) -> None:
        if cell.expire_mid_run and not cell.handed_over:
            cell.fake.expire_tokens()  # mid-run: between the order pages
        cell.handed_over.append((requisition.event.uid, is_update))

    def on_receipt(receipt: ConsignmentReceipt, /, *, is_update: bool) -> list[StockReceipt]:
        cell.handed_over.append((receipt.event.uid, is_update))
        consignment = receipt.consignment_number or receipt.event.uid
        quantity = 30 + int(consignment.rsplit("-", 1)[-1])  # distinct: a double would show
        return [StockReceipt(FACILITY, "AMOX250", quantity, consignment)]

    with SqliteStateStore(cell.tmp / "state.sqlite") as state:
        runner = SyncRunner(
            cell.lmis, state, on_requisition=on_requisition, on_receipt=on_receipt, notify=False
        )
        report = runner.run_once()
    return (
        report.fetched,
        report.handled,
        report.duplicates_skipped,
        report.failed,
        report.pushed,
        report.errors,
    )


@dataclass(frozen=True)
class Operation:
    run: Callable[[Cell], object]
    method: str
    path: str
    writes: bool  # state-changing: a fresh fake per cell


OPS: dict[str, Operation] = {
    "test_connection": Operation(op_test_connection, "GET", "/api/me", False),
    "fetch_completed_requisitions": Operation(op_requisitions, "GET", "/api/tracker/events", False),
    "fetch_completed_receipts": Operation(op_receipts, "GET", "/api/tracker/events", False),
    "fetch_stock_transactions": Operation(
        op_stock_transactions, "GET", "/api/tracker/events", False
    ),
    "pull": Operation(op_pull, "GET", "/api/tracker/events", False),
    "fetch_stock_on_hand": Operation(op_stock_on_hand, "GET", "/api/tracker/events", False),
    "push_data_values": Operation(op_push_data_values, "POST", "/api/dataValueSets", True),
    "push_stock_receipts": Operation(op_push_stock_receipts, "POST", "/api/tracker", True),
    "SyncRunner.run_once": Operation(op_run_once, "GET", "/api/tracker/events", True),
}

# --- server state -------------------------------------------------------------------------------


def snapshot(fake: FakeDhis2) -> tuple[object, ...]:
    """Events and data values without their timestamps (a push is dated at push time)."""
    events = tuple(
        sorted(
            (e.uid, e.program, e.org_unit, e.status, tuple(sorted(e.data_values.items())),
             e.tracked_entity, e.enrollment, e.deleted)
            for e in fake.events.values()
        )
    )  # fmt: skip
    values = tuple(
        sorted(
            (v.data_element, v.period, v.org_unit, v.category_option_combo,
             v.attribute_option_combo, v.value)
            for v in fake.data_values
        )
    )  # fmt: skip
    return events, values


def without_balances(state: tuple[object, ...]) -> tuple[object, ...]:
    events, values = state
    stripped = tuple(
        (*e[:4], tuple(kv for kv in e[4] if kv[0] != SOH), *e[5:])  # type: ignore[index]
        for e in events  # type: ignore[attr-defined]
    )
    return stripped, values


def final_balance(fake: FakeDhis2) -> int:
    """The stock on hand of the AMOX card's newest event, as the stock app reads it."""
    card = [e for e in fake.events.values() if e.tracked_entity == TE_AMOX and SOH in e.data_values]
    newest = max(card, key=lambda e: (e.occurred_at or T0, e.created_at, e.seq))
    return int(newest.data_values[SOH])


def assert_nothing_doubled(fake: FakeDhis2) -> None:
    keys = [
        (v.data_element, v.period, v.org_unit, v.category_option_combo, v.attribute_option_combo)
        for v in fake.data_values
    ]
    assert len(keys) == len(set(keys))
    uids = [e.uid for e in fake.events.values()]
    assert len(uids) == len(set(uids))
    # one STR event per receipt line: no derived UID twice, no second event per consignment
    stock = [e for e in fake.events.values() if e.program == STR and RECEIVED in e.data_values]
    lines = [(e.tracked_entity, e.data_values[RECEIVED]) for e in stock]
    assert len(lines) == len(set(lines)), lines


# --- waiting for a delayed request --------------------------------------------------------


class AttemptLog(logging.Handler):
    """Counts the session's one-line-per-attempt DEBUG records per (method, path)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.attempts: list[tuple[str, str]] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s %s -> ") and isinstance(record.args, tuple):
            with self._lock2:
                self.attempts.append((str(record.args[0]), str(record.args[1])))

    def count(self, method: str, path: str) -> int:
        with self._lock2:
            return self.attempts.count((method, path))


@pytest.fixture
def attempt_log() -> Iterator[AttemptLog]:
    logger = logging.getLogger("dhis2_lmis.http")
    handler = AttemptLog()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def settle(fake: FakeDhis2, method: str, path: str, before: int, attempts: int) -> None:
    """Wait until the fake has finished every attempt the client sent (the delayed one last)."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        done = sum(1 for r in fake.requests if (r.method, r.path) == (method, path)) - before
        if done >= attempts:
            return
        threading.Event().wait(0.01)  # polling the fake's own thread, not a retry sleep
    raise AssertionError(f"the delayed {method} {path} never finished")


def check_baseline(name: str, result: Any) -> None:
    """A clean run does real work, or every "survived" cell would pass vacuously."""
    if name == "test_connection":
        assert result[0] is True, result
    elif name == "push_data_values":
        assert result[:2] == ("SUCCESS", 2), result
    elif name == "push_stock_receipts":
        assert [o[0] for o in result] == ["created", "created"], result
        assert [o[2:] for o in result] == [(90, 115), (50, 55)], result
    elif name == "SyncRunner.run_once":
        assert result[0] == (6, 6, 0, 0, 3, ()), result
    else:  # one level per item would be >= 2: see test_stock_on_hand_has_one_level_per_item
        assert len(result) >= 1, result


# --- fixtures: shared read fakes and cached baselines --------------------------------------


class Worlds:
    """One read-only fake per version, and one clean baseline result per (version, operation)."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._readers: dict[str, FakeDhis2] = {}
        self._baselines: dict[tuple[str, str], tuple[object, tuple[object, ...]]] = {}
        self._made: list[FakeDhis2] = []
        self._n = 0

    def fresh(self, version: str) -> FakeDhis2:
        fake = new_fake(version)
        self._made.append(fake)
        return fake

    def reader(self, version: str) -> FakeDhis2:
        if version not in self._readers:
            self._readers[version] = self.fresh(version)
        return self._readers[version]

    def tmp(self) -> Path:
        self._n += 1
        path = self._tmp / f"cell{self._n}"
        path.mkdir()
        return path

    def baseline(self, version: str, name: str) -> tuple[object, tuple[object, ...]]:
        """The clean result and the server state it leaves (on its own fake for writes)."""
        key = (version, name)
        if key not in self._baselines:
            op = OPS[name]
            fake = self.fresh(version) if op.writes else self.reader(version)
            cell = Cell(fake, build_lmis(fake, version, [], NORMAL_TIMEOUT), self.tmp())
            result = op.run(cell)
            if name == "SyncRunner.run_once":
                result = (result, tuple(sorted(cell.handed_over)))
            check_baseline(name, result)
            self._baselines[key] = (result, snapshot(fake))
        return self._baselines[key]

    def close(self) -> None:
        for fake in self._made:
            fake.stop()
        problems = [p for fake in self._made for p in (*fake.unanswered, *fake.errors)]
        assert not problems, problems


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worlds]:
    registry = Worlds(tmp_path_factory.mktemp("fault-matrix"))
    yield registry
    registry.close()


# --- the cells ------------------------------------------------------------------------------


def inject(fake: FakeDhis2, op: Operation, fault: str) -> None:
    method, path = op.method, op.path
    if fault in ("503", "502", "504"):
        fake.inject(method, path, status=int(fault))
    elif fault == "429 Retry-After":
        fake.inject(method, path, status=429, retry_after=RETRY_AFTER)
    elif fault == "500 WebMessage":
        fake.inject(method, path, status=500, body=WEBMESSAGE_500)
    elif fault == "delay":
        fake.inject(method, path, fault="delay", seconds=DELAY_SECONDS)
    elif fault in ("drop", "drop_after", "html_login", "truncated_json"):
        fake.inject(method, path, fault=fault)  # type: ignore[arg-type]  # a FaultKind
    else:
        assert fault == "401 mid-run"  # no injection: tokens expire during the run


def run_cell(cell: Cell, name: str) -> tuple[object, Dhis2Error | None]:
    op = OPS[name]
    try:
        result = op.run(cell)
    except Dhis2Error as exc:
        return None, exc
    if name == "SyncRunner.run_once":
        result = (result, tuple(sorted(cell.handed_over)))
    return result, None


def reported_error(name: str, result: object) -> str | None:
    """The text of an error an operation reports instead of raising, if any."""
    if name == "test_connection":
        ok, message = result[0], result[1]  # type: ignore[index]
        return None if ok else str(message)
    if name == "SyncRunner.run_once":
        errors = result[0][5]  # type: ignore[index]
        return "\n".join(errors) if errors else None
    return None


def check_auth_renewed_once(lmis: Dhis2Lmis, version: str) -> None:
    auth = lmis.session.auth
    assert isinstance(auth, BodyAuth)
    if oauth(version):
        assert (auth.grants, auth.refreshes, auth.logins) == (1, 1, 0)
    else:
        assert (auth.grants, auth.refreshes, auth.logins) == (0, 0, 2)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("version", VERSIONS)
def test_fault_matrix_cell(
    worlds: Worlds, attempt_log: AttemptLog, version: str, operation: str, fault: str
) -> None:
    expected = EXPECTED[operation, fault]
    op = OPS[operation]
    base_result, base_state = worlds.baseline(version, operation)
    fake = worlds.fresh(version) if op.writes else worlds.reader(version)
    fake.clear_faults()
    sleeps: list[float] = []
    timeout = DELAY_TIMEOUT if fault == "delay" else NORMAL_TIMEOUT
    cell = Cell(
        fake,
        build_lmis(fake, version, sleeps, timeout),
        worlds.tmp(),
        expire_mid_run=fault == "401 mid-run",
    )
    before = snapshot(fake)
    sent_before = sum(1 for r in fake.requests if (r.method, r.path) == (op.method, op.path))
    inject(fake, op, fault)

    result, error = run_cell(cell, operation)

    if fault == "delay":
        settle(fake, op.method, op.path, sent_before, attempt_log.count(op.method, op.path))
    fake.clear_faults()
    after = snapshot(fake)
    assert_nothing_doubled(fake)

    if expected in (SURVIVED, SURVIVED_AS_UPDATE):
        assert error is None, f"{operation} x {fault} on {version}: {error!r}"
        if expected == SURVIVED:
            assert result == base_result
        else:  # the same values, counted as updated or ignored the second time
            status, imported, updated, ignored, conflicts = result  # type: ignore[misc]
            base = base_result
            assert (status, conflicts) == (base[0], base[4])  # type: ignore[index]
            assert imported + updated + ignored == sum(base[1:4])  # type: ignore[index]
        assert after == base_state
        if fault in ("503", "502", "504", "drop", "drop_after", "delay"):
            assert len(sleeps) == 1  # exactly one retry
        if fault == "429 Retry-After":
            assert sleeps == [float(RETRY_AFTER)]
        if fault == "401 mid-run":
            check_auth_renewed_once(cell.lmis, version)
        return

    # an error cell: the specific error, raised or reported, and no retry of it
    assert not sleeps
    text = reported_error(operation, result) if error is None else None
    if error is not None:
        assert type(error) is ERROR_TYPES[expected], repr(error)
        if fault == "500 WebMessage":
            assert error.dhis2_message == "Could not get JDBC Connection"
    else:
        assert text is not None and SIGNATURES[expected] in text, text
    if not op.writes:
        assert after == before  # a read changes nothing
        return
    # a write: all or nothing, never half; then a re-run completes it exactly once
    acted = fault == "truncated_json"  # the server acted before the body broke
    if operation == "SyncRunner.run_once" and expected == "AuthenticationError":
        # refused credentials stop the whole run (docs/sync.md): no more logins, nothing
        # handed over or written; the re-run below does it all
        assert after == before
        assert not cell.handed_over
    elif operation == "SyncRunner.run_once":
        # the fault hit the order fetch, which writes nothing; the receipts synced and pushed
        # their stock in full, and no order was handed over (its cursor did not move)
        assert after == base_state
        assert not [uid for uid, _ in cell.handed_over if uid.startswith("Order")]
    else:
        assert after == (base_state if acted else before)
    rerun = Cell(fake, build_lmis(fake, version, [], NORMAL_TIMEOUT), cell.tmp)
    rerun.handed_over = cell.handed_over  # the sync's state file carries over too
    again, again_error = run_cell(rerun, operation)
    assert again_error is None, repr(again_error)
    assert snapshot(fake) == base_state
    assert_nothing_doubled(fake)
    if operation == "SyncRunner.run_once":
        # every event handed over exactly once across the failed run and its re-run
        assert again[1] == base_result[1]  # type: ignore[index]
    elif operation == "push_stock_receipts" and acted:
        assert {o[0] for o in again} == {"already_pushed"}  # type: ignore[attr-defined]
    elif not acted:
        assert again == base_result


def test_non_idempotent_post_is_not_retried_after_drop_after() -> None:
    """The rule behind the write cells: a POST not marked idempotent is never repeated."""
    with FakeDhis2(version="2.41") as fake:
        fake.add_org_unit(ROOT, "ROOT", "Country")
        sleeps: list[float] = []
        session = Dhis2Session(
            fake.url, BodyAuth("admin", "district"), retry=RetryPolicy(), sleep=sleeps.append
        )
        fake.inject("POST", "/api/dataValueSets", fault="drop_after")
        with pytest.raises(Dhis2ConnectionError):
            session.post_json("dataValueSets", {"dataValues": []}, params={"async": "false"})
        posts = [r for r in fake.requests if r.method == "POST" and "dataValue" in r.path]
    assert (len(posts), sleeps) == (1, [])


def test_every_cell_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == {(o, f) for o in OPERATIONS for f in FAULTS}
    allowed = {SURVIVED, SURVIVED_AS_UPDATE, *ERROR_TYPES}
    assert set(EXPECTED.values()) <= allowed


def render_table() -> str:
    """The markdown table of ``EXPECTED`` as docs/reliability.md shows it."""
    short = {SURVIVED: "ok", SURVIVED_AS_UPDATE: "ok (as update)"}
    lines = [
        "| operation | " + " | ".join(FAULTS) + " |",
        "|---|" + "---|" * len(FAULTS),
    ]
    for operation in OPERATIONS:
        cells = [short.get(EXPECTED[operation, f], EXPECTED[operation, f]) for f in FAULTS]
        lines.append(f"| `{operation}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_docs_table_matches_expected() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
    text = docs.read_text(encoding="utf-8")
    match = re.search(r"<!-- matrix:start -->\n(.*?)\n<!-- matrix:end -->", text, re.S)
    assert match is not None, "docs/reliability.md lacks the matrix markers"
    assert match.group(1).strip() == render_table(), "regenerate with render_table()"


def test_stock_receipts_in_the_matrix_are_distinct_lines() -> None:
    assert len({r.event_uid for r in STOCK_RECEIPTS}) == len(STOCK_RECEIPTS)
    assert all(r.quantity > Decimal(0) for r in STOCK_RECEIPTS)


@pytest.mark.parametrize("version", VERSIONS)
def test_stock_on_hand_has_one_level_per_item(version: str) -> None:
    """One level per item, on 2.37 too (a bug this suite found, fixed in 0.1.0).

    DHIS2 2.37's /api/tracker/events leaves ``trackedEntity`` out of every event (WEB_API.md
    §4.4). Before the fix the STR reader found no item code there and keyed every card of an org
    unit on ``(org_unit, "")``, so two items' stock became one level, the newest one; it now
    finds the tracked entity through the event's enrollment. The 2.37 case guards that.
    """
    fake = new_fake(version)
    try:
        lmis = build_lmis(fake, version, [], NORMAL_TIMEOUT)
        levels = {(lvl.item_code, lvl.stock_on_hand) for lvl in lmis.fetch_stock_on_hand()}
    finally:
        fake.stop()
    assert levels == {("AMOX250", Decimal(90)), ("PARA500", Decimal(50))}


@pytest.mark.parametrize("fault", ["truncated_json", "500 WebMessage", "html_login"])
@pytest.mark.parametrize("version", ["2.37", "2.42"])
def test_sync_stock_push_failure_is_handed_over_again_and_written_once(
    worlds: Worlds, version: str, fault: str
) -> None:
    """At least once, exactly once: a receipt whose stock push broke is handed over again
    next run, and its stock event exists once, whether or not the broken push had landed."""
    _, base_state = worlds.baseline(version, "SyncRunner.run_once")
    fake = worlds.fresh(version)
    cell = Cell(fake, build_lmis(fake, version, [], NORMAL_TIMEOUT), worlds.tmp())
    inject(fake, Operation(op_run_once, "POST", "/api/tracker", True), fault)
    first = op_run_once(cell)
    assert first[3] == 1 and first[4] == 2, first  # type: ignore[index]  # 1 failed, 2 pushed
    assert_nothing_doubled(fake)
    rerun = Cell(fake, build_lmis(fake, version, [], NORMAL_TIMEOUT), cell.tmp)
    rerun.handed_over = cell.handed_over
    second = op_run_once(rerun)
    assert second[3] == 0 and not second[5], second  # type: ignore[index]
    # the same events and received quantities as the clean run; the balances in between differ
    # (the failed receipt landed last), the final stock on hand is the same
    assert without_balances(snapshot(fake)) == without_balances(base_state)
    assert final_balance(fake) == 90 + 31 + 32 + 33
    assert_nothing_doubled(fake)
    receipts = [uid for uid, _ in cell.handed_over if uid.startswith("Rcpt")]
    assert sorted(set(receipts)) == ["RcptEvent00", "RcptEvent01", "RcptEvent02"]
    assert len(receipts) == 4  # the failed one twice (at least once), the others once
    assert second[4] == (0 if fault == "truncated_json" else 1)  # type: ignore[index]
