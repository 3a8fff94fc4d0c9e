"""Event pages decoded straight into records: every version's shape, and odd input that a
page must survive (a number for text, a value that is not an object, a bad timestamp).

The odd pages are served by FakeDhis2 over real HTTP (an injected answer with a JSON body),
so the whole read path runs: session, page decoder, record builder, paging.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.convert import structure_event
from dhis2_lmis.dhis2.events import EventQuery, iter_event_pages, iter_events
from dhis2_lmis.dhis2.records import DataValue, Event
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import ResponseFormatError
from dhis2_lmis.testing import FakeDhis2

VERSIONS = ["2.36", "2.37", "2.38", "2.39", "2.40", "2.41", "2.42", "2.43"]
LEGACY_VERSIONS = ["2.36", "2.37", "2.38", "2.39", "2.40", "2.41"]
PROGRAM, STAGE, UNIT, QTY, NOTE = "OrderProg01", "OrderStage1", "FacilityA01", "QtyAmox0001", "Rm1"
START = dt.datetime(2026, 11, 1, 8, 0, 0)


def seeded(version: str) -> FakeDhis2:
    fake = FakeDhis2(version=version)
    fake.add_org_unit(UNIT, "FAC_A", "Facility A")
    fake.add_data_element(QTY, "AMOX250", "Amoxicillin 250mg", domain_type="TRACKER")
    fake.add_data_element(NOTE, "REMARK", "Remark", domain_type="TRACKER")
    fake.add_program(PROGRAM, "Order program", stages={STAGE: (QTY, NOTE)}, org_units=(UNIT,))
    for n in range(7):
        stamp = START + dt.timedelta(minutes=n)
        fake.add_event(
            f"Ev{n:09d}",
            PROGRAM,
            UNIT,
            program_stage=STAGE,
            data_values={QTY: str(n * 10), NOTE: f"note {n}"},
            occurred_at=stamp,
            updated_at=stamp,
            completed_at=stamp,
        )
    return fake


def session_for(fake: FakeDhis2, *, legacy: bool = False) -> Dhis2Session:
    return Dhis2Session(
        fake.url, BasicAuth("admin", "district"), sleep=lambda _: None, legacy_events=legacy
    )


def read(fake: FakeDhis2, *, legacy: bool = False, page_size: int = 3) -> list[Event]:
    with session_for(fake, legacy=legacy) as session:
        return list(iter_events(session, EventQuery(program=PROGRAM, page_size=page_size)))


@pytest.mark.parametrize(
    ("version", "legacy"),
    [(v, False) for v in VERSIONS] + [(v, True) for v in LEGACY_VERSIONS],
)
def test_pages_and_structure_event_build_the_same_records(version: str, legacy: bool) -> None:
    with seeded(version) as fake:
        paged = read(fake, legacy=legacy)
        with session_for(fake, legacy=legacy) as session:
            dialect = session.dialect
            body = session.get_json(dialect.events_path, {"program": PROGRAM, "fields": "*"})
            assert isinstance(body, dict)
            items = next(body[key] for key in dialect.events_keys if key in body)
            assert isinstance(items, list)
            one_by_one = {e.uid: e for e in (structure_event(i, session.time_zone) for i in items)}
    assert [e.uid for e in paged] == [f"Ev{n:09d}" for n in range(7)]
    for event in paged:
        assert event == one_by_one[event.uid]
        assert event.problems == ()
        assert event.values() == {QTY: event.value(QTY), NOTE: f"note {int(event.uid[2:])}"}
        assert event.updated_at is not None and event.updated_at.tzinfo is not None
        assert all(isinstance(dv, DataValue) for dv in event.data_values)


def odd_page() -> bytes:
    stamp = "2026-11-01T08:00:00.000"
    good = {"dataElement": QTY, "value": "5", "createdAt": stamp, "updatedAt": stamp}
    events = [
        {"event": "GoodEvent01", "orgUnit": UNIT, "updatedAt": stamp, "dataValues": [good]},
        {
            "event": 12345,
            "orgUnit": 678,
            "status": "COMPLETED",
            "deleted": "no",
            "occurredAt": "yesterday",
            "updatedAt": stamp,
            "completedBy": {"uid": "UserUid0001"},
            "dataValues": [
                {"dataElement": QTY, "value": 40, "providedElsewhere": "yes", "storedBy": 7},
                "not an object",
                {"value": "orphan"},
                {"dataElement": NOTE, "value": None, "createdAt": [1, 2]},
            ],
            "notes": [{"value": "checked", "storedAt": stamp}, 3],
        },
        7,
        {"orgUnit": UNIT, "dataValues": {"not": "a list"}},
    ]
    return json.dumps({"pager": {"page": 1, "pageSize": 50}, "events": events}).encode()


def test_odd_fields_become_problems_and_never_sink_the_page() -> None:
    with FakeDhis2(version="2.41") as fake:
        fake.inject("GET", "/api/tracker/events", status=200, body=odd_page(),
                    content_type="application/json")  # fmt: skip
        good, odd, not_object, no_uid = read(fake, page_size=50)
    assert good.uid == "GoodEvent01" and good.problems == ()
    assert good.data_values == (DataValue(QTY, "5", False, None, good.updated_at, good.updated_at),)
    assert (odd.uid, odd.org_unit, odd.deleted, odd.completed_by) == (
        "12345", "678", False, "UserUid0001",
    )  # fmt: skip
    assert odd.occurred_at is None
    assert odd.values() == {QTY: "40", NOTE: None}
    assert odd.data_values[0].provided_elsewhere is False
    assert odd.data_values[0].stored_by is None
    assert odd.data_values[1].created_at is None
    assert [n.value for n in odd.notes] == ["checked"]
    messages = [str(p) for p in odd.problems]
    assert any("occurredAt is not a timestamp: 'yesterday'" in m for m in messages)
    assert any("not an object: 'not an object'" in m for m in messages)
    assert any("no data element (value 'orphan')" in m for m in messages)
    assert any("createdAt is not a timestamp" in m for m in messages)
    assert not_object.uid == "" and "got int" in str(not_object.problems[0])
    assert no_uid.uid == "" and no_uid.data_values == ()
    assert [str(p) for p in no_uid.problems] == ["the event has no UID"]


def read_one_page(events: list[object]) -> tuple[list[Event], dt.tzinfo | None]:
    """The records of one served page of these events, and the server's time zone."""
    body = json.dumps({"pager": {"page": 1, "pageSize": 50}, "events": events}).encode()
    with FakeDhis2(version="2.41") as fake:
        fake.inject("GET", "/api/tracker/events", status=200, body=body,
                    content_type="application/json")  # fmt: skip
        with session_for(fake) as session:
            got = list(iter_events(session, EventQuery(program=PROGRAM, page_size=50)))
            return got, session.time_zone


def test_timestamps_msgspec_cannot_read_are_parsed_one_by_one_with_the_page_kept() -> None:
    """A date alone is a timestamp DHIS2 may send; RFC 3339 readers refuse it. The page is read
    again leniently: the date counts, a bad spelling falls back to the other, offsets stay."""
    events = [
        {"event": "DateOnlyEv1", "updatedAt": "2026-11-01", "occurredAt": "2026-11-02"},
        {"event": "BadBothEv01", "updatedAt": "2026-11-01T08:00:00.000",
         "occurredAt": "yesterday", "eventDate": "2026-11-03T09:30:00.000"},
        {"event": "OffsetEv001", "updatedAt": "2026-11-01T05:00:00.000Z"},
    ]  # fmt: skip
    (date_only, bad, offset), zone = read_one_page(events)
    assert zone is not None
    assert date_only.updated_at == dt.datetime(2026, 11, 1, tzinfo=zone)
    assert date_only.occurred_at == dt.datetime(2026, 11, 2, tzinfo=zone)
    assert date_only.problems == ()
    assert bad.occurred_at == dt.datetime(2026, 11, 3, 9, 30, tzinfo=zone)
    assert [str(p) for p in bad.problems] == ["occurredAt is not a timestamp: 'yesterday'"]
    assert offset.updated_at == dt.datetime(2026, 11, 1, 5, tzinfo=dt.timezone.utc)
    assert offset.updated_at.tzinfo == dt.timezone.utc  # as sent, not moved into the zone


def test_a_timestamp_with_an_offset_is_kept_as_sent_on_a_typed_page() -> None:
    stamp = "2026-11-01T08:00:00.000"
    events = [
        {"event": "LocalEvent1", "updatedAt": stamp},
        {"event": "OffsetEvnt1", "updatedAt": "2026-11-01T08:00:00.000+02:00"},
        {"event": "LocalEvent2", "updatedAt": stamp},
    ]
    (local, offset, again), zone = read_one_page(events)
    local_time = dt.datetime(2026, 11, 1, 8, tzinfo=zone)
    assert local.updated_at == local_time and again.updated_at == local_time
    assert local.updated_at.tzinfo is zone and again.updated_at is local.updated_at
    assert offset.updated_at.utcoffset() == dt.timedelta(hours=2)
    assert local.problems == offset.problems == again.problems == ()


def test_a_uid_repeated_within_a_page_is_yielded_once_and_uidless_events_all_kept() -> None:
    stamp = "2026-11-01T08:00:00.000"
    first, second = [{"dataElement": QTY, "value": "1"}], [{"dataElement": QTY, "value": "2"}]
    events = [
        {"event": "RepeatedEv1", "updatedAt": stamp, "dataValues": first},
        {"event": "OtherEvent1", "updatedAt": stamp},
        {"event": "RepeatedEv1", "updatedAt": stamp, "dataValues": second},
        {"orgUnit": UNIT, "updatedAt": stamp},
        {"orgUnit": "FacilityB01", "updatedAt": stamp},
    ]  # fmt: skip
    got, _ = read_one_page(events)
    assert [e.uid for e in got] == ["RepeatedEv1", "OtherEvent1", "", ""]
    assert got[0].values() == {QTY: "1"}  # the first of the two, as the page lists them
    assert [e.org_unit for e in got[2:]] == [UNIT, "FacilityB01"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "expected a JSON object page"),
        (b'{"events": "none", "pager": {}}', "page has no list 'events'"),
        (b'{"events": [{"event": "E1", "orgUnit": 1e400}]}', "Number out of range"),
        (b'{"events": [', "not valid JSON"),
    ],
)
def test_unreadable_pages_are_response_format_errors(body: bytes, message: str) -> None:
    with FakeDhis2(version="2.41") as fake:
        fake.inject("GET", "/api/tracker/events", status=200, body=body,
                    content_type="application/json")  # fmt: skip
        with pytest.raises(ResponseFormatError, match=message):
            read(fake)


def test_structure_event_never_raises_on_a_dict_msgspec_cannot_read() -> None:
    event = structure_event({"event": "E1", 3: "a key that is not text"})  # type: ignore[dict-item]
    assert event.uid == ""
    assert "could not be read" in str(event.problems[0])


@pytest.mark.parametrize("workers", [1, 3])
def test_event_pages_hand_out_every_event_once_in_non_empty_pages(workers: int) -> None:
    query = EventQuery(program=PROGRAM, page_size=3)
    with seeded("2.41") as fake, session_for(fake) as session:
        pages = list(iter_event_pages(session, query, workers=workers))
        flat = list(iter_events(session, query, workers=workers))

    assert pages and all(0 < len(page) <= 3 for page in pages)
    paged = [event.uid for page in pages for event in page]
    assert sorted(paged) == sorted(event.uid for event in flat) == [f"Ev{n:09d}" for n in range(7)]
    if workers == 1:  # one cursor: pages in update order, as iter_events yields them
        assert paged == [event.uid for event in flat]
