"""Stock receipts to the STR program, against FakeDhis2 on 2.38 (instances), 2.41 and 2.42."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.retry import RetryPolicy
from dhis2_lmis.dhis2.session import MAX_URL_LENGTH, Dhis2Session
from dhis2_lmis.errors import ConfigError, ServerError
from dhis2_lmis.lmis.datavalues import InvalidValueError
from dhis2_lmis.lmis.stock import (
    StockPusher,
    StockPushReport,
    StockReceipt,
    StockReceiptOutcome,
    receipt_event_uid,
)
from dhis2_lmis.testing import FakeDhis2, RecordedRequest
from tests._lmis_world import (
    EN_AMOX,
    FACILITY,
    FACILITY_B,
    ITEM_CODE,
    RECEIVED,
    SOH,
    STR,
    STR_STAGE,
    T0,
    TE_AMOX,
    TE_DONE,
    VERSIONS,
    add_stock_cards,
    seed,
)

NOW = dt.datetime(2026, 11, 20, 14, 30, 0)


@pytest.fixture(params=VERSIONS)
def fake(request: pytest.FixtureRequest, fake_dhis2_factory: Callable[..., FakeDhis2]) -> FakeDhis2:
    server = seed(fake_dhis2_factory(request.param, now=T0))
    add_stock_cards(server)
    return server


def session_for(fake: FakeDhis2, *, legacy_events: bool = False) -> Dhis2Session:
    return Dhis2Session(
        fake.url,
        auth=BasicAuth("admin", "district"),
        retry=RetryPolicy(attempts=2),
        sleep=lambda _: None,
        legacy_events=legacy_events,
    )


def pusher_for(fake: FakeDhis2, *, legacy_events: bool = False, **options: object) -> StockPusher:
    settings: dict[str, object] = {
        "program": STR,
        "program_stage": STR_STAGE,
        "stock_on_hand": SOH,
        "received_quantity": RECEIVED,
        "item_code_attribute": ITEM_CODE,
        "now": lambda: NOW,
        **options,
    }
    return StockPusher(session_for(fake, legacy_events=legacy_events), **settings)  # type: ignore[arg-type]


def receipt(
    code: str, quantity: int | str, reference: str = "CI-0001", ou: str = FACILITY
) -> StockReceipt:
    return StockReceipt(ou, code, quantity, reference)


def stock_event(
    fake: FakeDhis2,
    te: str,
    soh: int | None,
    occurred: dt.datetime,
    created: dt.datetime,
    *,
    received: int | None = None,
    deleted: bool = False,
) -> str:
    values: dict[str, str | int | float] = {}
    if soh is not None:
        values[SOH] = soh
    if received is not None:
        values[RECEIVED] = received
    return fake.add_event(
        None,
        STR,
        FACILITY,
        data_values=values,
        occurred_at=occurred,
        created_at=created,
        tracked_entity=te,
        deleted=deleted,
    ).uid


def requests_to(fake: FakeDhis2, method: str, path: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path == path]


def by_status(report: StockPushReport) -> list[str]:
    return [o.status for o in report.outcomes]


# --------------------------------------------------------------------------- stock on hand


def test_stock_on_hand_builds_on_newest_event_whatever_order_it_was_captured(
    fake: FakeDhis2,
) -> None:
    day = dt.timedelta(days=1)
    # captured out of order: the newest occurrence was entered first
    stock_event(fake, TE_AMOX, 120, T0 + 5 * day, T0 + 1 * day)
    stock_event(fake, TE_AMOX, 300, T0 + 1 * day, T0 + 6 * day)
    stock_event(fake, TE_AMOX, 80, T0 + 3 * day, T0 + 7 * day)
    # same occurrence day as the newest, created earlier: older
    stock_event(fake, TE_AMOX, 999, T0 + 5 * day, T0)
    # newer, but without a stock-on-hand value, or deleted: ignored
    stock_event(fake, TE_AMOX, None, T0 + 6 * day, T0 + 8 * day, received=40)
    stock_event(fake, TE_AMOX, 555, T0 + 9 * day, T0 + 9 * day, deleted=True)

    report = pusher_for(fake).push([receipt("AMOX250", 500)])

    (outcome,) = report.outcomes
    assert outcome.status == "created", outcome
    assert (outcome.stock_on_hand_before, outcome.stock_on_hand_after) == (
        Decimal(120),
        Decimal(620),
    )
    event = fake.events[outcome.event_uid or ""]
    assert event.data_values == {RECEIVED: "500", SOH: "620"}
    assert event.status == "COMPLETED"
    assert event.occurred_at == NOW
    assert (event.tracked_entity, event.enrollment, event.program_stage) == (
        TE_AMOX,
        EN_AMOX,
        STR_STAGE,
    )


def test_first_receipt_of_a_card_without_events_starts_from_zero(fake: FakeDhis2) -> None:
    report = pusher_for(fake).push([receipt("PARA500", "25.0")])

    (outcome,) = report.outcomes
    assert (outcome.stock_on_hand_before, outcome.stock_on_hand_after) == (Decimal(0), Decimal(25))
    assert fake.events[outcome.event_uid or ""].data_values == {RECEIVED: "25", SOH: "25"}


def test_two_receipts_for_one_item_chain_their_stock_on_hand(fake: FakeDhis2) -> None:
    stock_event(fake, TE_AMOX, 100, T0, T0)

    report = pusher_for(fake).push(
        [receipt("AMOX250", 30, "CI-0001"), receipt("AMOX250", 20, "CI-0002")]
    )

    first, second = report.outcomes
    assert (first.stock_on_hand_before, first.stock_on_hand_after) == (Decimal(100), Decimal(130))
    assert (second.stock_on_hand_before, second.stock_on_hand_after) == (Decimal(130), Decimal(150))
    assert fake.events[second.event_uid or ""].data_values[SOH] == "150"
    # the next push reads the chained balance back as the latest
    third = pusher_for(fake).push([receipt("AMOX250", 5, "CI-0003")]).outcomes[0]
    assert third.stock_on_hand_after == 155


# --------------------------------------------------------------------------- idempotency


def test_pushing_the_same_receipts_twice_writes_each_event_once(fake: FakeDhis2) -> None:
    stock_event(fake, TE_AMOX, 100, T0, T0)
    receipts = [receipt("AMOX250", 50), receipt("PARA500", 10)]
    first = pusher_for(fake).push(receipts)
    events_after_first = len(fake.events)

    second = pusher_for(fake).push(receipts)

    assert by_status(first) == ["created", "created"]
    assert by_status(second) == ["already_pushed", "already_pushed"]
    assert len(fake.events) == events_after_first == 3
    amox = second.outcomes[0]
    assert amox.event_uid == first.outcomes[0].event_uid
    assert (amox.stock_on_hand_before, amox.stock_on_hand_after) == (Decimal(100), Decimal(150))
    assert fake.events[amox.event_uid or ""].data_values[SOH] == "150"
    assert len(requests_to(fake, "POST", "/api/tracker")) == 1


def test_a_changed_quantity_under_the_same_reference_is_reported_not_lost(
    fake: FakeDhis2,
) -> None:
    pusher_for(fake).push([receipt("AMOX250", 50)])

    again = pusher_for(fake).push([receipt("AMOX250", 60)]).outcomes[0]

    assert again.status == "already_pushed"
    assert again.message is not None and "quantity 50, not 60" in again.message
    assert len(requests_to(fake, "POST", "/api/tracker")) == 1


def test_a_receipt_repeated_within_one_push_is_skipped(fake: FakeDhis2) -> None:
    report = pusher_for(fake).push([receipt("AMOX250", 50), receipt("AMOX250", 50)])

    assert by_status(report) == ["created", "skipped"]
    assert report.ok
    assert fake.events[report.outcomes[0].event_uid or ""].data_values[SOH] == "50"


def test_event_uid_is_a_valid_dhis2_uid_derived_from_reference_item_and_org_unit() -> None:
    uid = receipt_event_uid("CI-0001", "AMOX250", FACILITY)

    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{10}", uid)
    assert uid == receipt("AMOX250", 1).event_uid
    others = {
        receipt_event_uid("CI-0002", "AMOX250", FACILITY),
        receipt_event_uid("CI-0001", "PARA500", FACILITY),
        receipt_event_uid("CI-0001", "AMOX250", FACILITY_B),
    }
    assert uid not in others
    assert len(others) == 3


# --------------------------------------------------------------------------- failures


def test_missing_tracked_entity_or_active_enrollment_fails_only_that_receipt(
    fake: FakeDhis2,
) -> None:
    report = pusher_for(fake).push(
        [
            receipt("NOSUCHITEM", 5),
            receipt("AMOX250", 5),
            receipt("DISCONTINUED", 5),
            receipt("IBU200", 5),  # exists, but at facility B
        ]
    )

    assert by_status(report) == ["failed", "created", "failed", "failed"]
    assert not report.ok
    assert [o.receipt.item_code for o in report.created] == ["AMOX250"]
    missing, _, inactive, elsewhere = report.outcomes
    assert missing.message == (
        f"no tracked entity with item code NOSUCHITEM at org unit {FACILITY} in program {STR}"
    )
    assert inactive.message is not None
    assert "no ACTIVE enrollment" in inactive.message
    assert TE_DONE in inactive.message
    assert elsewhere.message is not None
    assert "no tracked entity with item code IBU200" in elsewhere.message
    assert len(fake.events) == 1


def test_a_refused_event_fails_its_receipt_and_the_later_ones_of_that_item(
    fake: FakeDhis2,
) -> None:
    # the data elements are INTEGER: DHIS2 refuses 1.5 with E1302
    report = pusher_for(fake).push(
        [
            receipt("AMOX250", "1.5", "CI-0001"),
            receipt("AMOX250", 10, "CI-0002"),
            receipt("PARA500", 10, "CI-0001"),
        ]
    )

    refused, chained, other = report.outcomes
    assert refused.status == "failed"
    assert refused.error_code == "E1302"
    assert chained.status == "failed"
    assert chained.message is not None
    assert "CI-0001" in chained.message
    assert other.status == "created"
    assert list(fake.events) == [other.event_uid]


def test_a_failed_post_raises_and_writes_nothing(fake: FakeDhis2) -> None:
    fake.inject("POST", "/api/tracker", status=500, times=5)

    with pytest.raises(ServerError):
        pusher_for(fake).push([receipt("AMOX250", 5)])

    assert fake.events == {}


@pytest.mark.parametrize("quantity", [0, -3, "NaN", "Infinity", "many", "-0.5"])
def test_receipt_quantity_must_be_a_finite_number_above_zero(quantity: int | str) -> None:
    with pytest.raises(InvalidValueError, match="CI-0042"):
        StockReceipt(FACILITY, "AMOX250", quantity, "CI-0042")


def test_receipt_quantity_is_normalised_to_decimal() -> None:
    assert StockReceipt(FACILITY, "AMOX250", "1.5e2", "CI-1").quantity == Decimal(150)
    assert StockReceipt(FACILITY, "AMOX250", 7, "CI-1").quantity == Decimal(7)


# --------------------------------------------------------------------------- payload and wire


def test_inactive_received_quantity_row_is_left_out_of_the_event(fake: FakeDhis2) -> None:
    stock_event(fake, TE_AMOX, 10, T0, T0)

    report = pusher_for(fake, received_quantity=None).push([receipt("AMOX250", 5)])

    assert fake.events[report.outcomes[0].event_uid or ""].data_values == {SOH: "15"}


def test_inactive_stock_on_hand_row_writes_only_the_quantity_and_reads_no_events(
    fake: FakeDhis2,
) -> None:
    report = pusher_for(fake, stock_on_hand=None).push([receipt("AMOX250", 5)])

    (outcome,) = report.outcomes
    assert outcome.status == "created"
    assert outcome.stock_on_hand_after is None
    assert fake.events[outcome.event_uid or ""].data_values == {RECEIVED: "5"}
    reads = requests_to(fake, "GET", "/api/tracker/events")
    assert all("trackedEntity" not in r.query for r in reads)


def test_import_is_sent_synchronously_with_the_literal_lowercase_false(fake: FakeDhis2) -> None:
    pusher_for(fake).push([receipt("AMOX250", 5)])

    (post,) = requests_to(fake, "POST", "/api/tracker")
    assert post.query == {
        "async": ["false"],
        "importStrategy": ["CREATE_AND_UPDATE"],
        "atomicMode": ["OBJECT"],
        "reportMode": ["ERRORS"],
    }


def test_a_back_dated_receipt_is_recorded_now_with_a_note(fake: FakeDhis2) -> None:
    stock_event(fake, TE_AMOX, 10, T0 + dt.timedelta(days=3), T0)
    late = StockReceipt(FACILITY, "AMOX250", 5, "CI-0009", occurred_at=T0)

    (outcome,) = pusher_for(fake).push([late]).outcomes

    assert outcome.status == "created"
    assert outcome.message is not None
    assert "not back-dated" in outcome.message
    assert fake.events[outcome.event_uid or ""].occurred_at == NOW


def test_look_ups_are_one_request_per_org_unit(fake: FakeDhis2) -> None:
    fake.clear_requests()
    pusher_for(fake).push(
        [
            receipt("AMOX250", 1),
            receipt("PARA500", 1),
            receipt("NOSUCHITEM", 1),
            receipt("IBU200", 1, ou=FACILITY_B),
        ]
    )

    lookups = requests_to(fake, "GET", "/api/tracker/trackedEntities")
    assert len(lookups) == 2
    org_unit_param = "orgUnits" if fake.server_version.minor >= 41 else "orgUnit"
    assert sorted(r.query[org_unit_param][0] for r in lookups) == [FACILITY, FACILITY_B]
    (existing_check,) = [
        r for r in requests_to(fake, "GET", "/api/tracker/events") if "trackedEntity" not in r.query
    ]
    soh_reads = [
        r for r in requests_to(fake, "GET", "/api/tracker/events") if "trackedEntity" in r.query
    ]
    assert len(soh_reads) == 3  # one per stock card found
    assert existing_check.query["includeDeleted"] == ["true"]


def test_many_item_codes_are_chunked_to_keep_urls_short(fake: FakeDhis2) -> None:
    codes = [f"ITEM-{n:04d}-" + "X" * 40 for n in range(250)]
    for n, code in enumerate(codes):
        fake.add_tracked_entity(f"TeBulk{n:05d}", FACILITY_B, STR, attributes={ITEM_CODE: code})
    fake.clear_requests()

    report = pusher_for(fake, stock_on_hand=None).push(
        [receipt(code, 1, ou=FACILITY_B) for code in codes]
    )

    assert by_status(report) == ["created"] * len(codes)
    lookups = requests_to(fake, "GET", "/api/tracker/trackedEntities")
    assert 1 < len(lookups) <= 4
    for request in lookups:
        query = urlencode(request.query, doseq=True)
        assert len(fake.url) + len(request.path) + 1 + len(query) <= MAX_URL_LENGTH


def test_legacy_mode_writes_through_api_events_where_it_exists(fake: FakeDhis2) -> None:
    stock_event(fake, TE_AMOX, 40, T0, T0)
    if fake.server_version.minor >= 42:  # /api/events is gone: a clear error, nothing sent
        with pytest.raises(ConfigError, match="api/events"):
            pusher_for(fake, legacy_events=True).push([receipt("AMOX250", 2)])
        assert [r for r in fake.requests if r.method == "POST"] == []
        return

    report = pusher_for(fake, legacy_events=True).push([receipt("AMOX250", 2)])

    (outcome,) = report.outcomes
    assert outcome.status == "created", outcome
    assert fake.events[outcome.event_uid or ""].data_values == {RECEIVED: "2", SOH: "42"}
    (post,) = requests_to(fake, "POST", "/api/events")
    assert post.query == {"strategy": ["CREATE_AND_UPDATE"]}
    assert "eventDate" in post.json()["events"][0]
    assert requests_to(fake, "POST", "/api/tracker") == []


# --------------------------------------------------------------------------- the report


def test_report_reads_as_counts_then_problems() -> None:
    ok = StockReceiptOutcome(receipt("AMOX250", 5), "created", "Abc", Decimal(1), Decimal(6))
    bad = StockReceiptOutcome(
        receipt("NOPE", 1), "failed", "Def", message="no tracked entity", error_code=None
    )
    report = StockPushReport((ok, bad))

    text = str(report)
    assert text.splitlines()[0] == (
        "2 stock receipts: 1 created, 0 already pushed, 1 failed, 0 skipped"
    )
    assert "failed: CI-0001: 1 x NOPE" in text
    assert "<td>failed</td>" in report._repr_html_()
    assert report.created == (ok,)
    assert report.failed == (bad,)
    assert not report.ok


def test_a_pushed_event_deleted_in_dhis2_is_reported_not_recreated(fake: FakeDhis2) -> None:
    first = pusher_for(fake).push([receipt("AMOX250", 5)]).outcomes[0]
    fake.delete_event(first.event_uid or "")

    again = pusher_for(fake).push([receipt("AMOX250", 5)]).outcomes[0]

    assert again.status == "failed"
    assert again.error_code == "E1082"
    assert len(requests_to(fake, "POST", "/api/tracker")) == 1


@pytest.mark.parametrize(
    ("version", "order"),
    [("2.36", "eventDate:desc,created:desc"), ("2.37", "occurredAt:desc,createdAt:desc")],
)
def test_latest_event_order_uses_the_names_the_version_understands(
    version: str, order: str
) -> None:
    with FakeDhis2(version=version, now=T0) as server:
        add_stock_cards(seed(server))
        stock_event(server, TE_AMOX, 70, T0 + dt.timedelta(days=2), T0)
        stock_event(server, TE_AMOX, 90, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=3))

        (outcome,) = pusher_for(server).push([receipt("AMOX250", 5)]).outcomes

        assert outcome.stock_on_hand_after == Decimal(75)
        (read,) = [
            r
            for r in requests_to(server, "GET", "/api/tracker/events")
            if "trackedEntity" in r.query
        ]
        assert read.query["order"] == [order]
        assert not server.unanswered
