"""iter_events on every DHIS2 version: exact sets, stable under edits, faults and token expiry."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest

from dhis2_lmis.dhis2.auth import BasicAuth, BodyAuth
from dhis2_lmis.dhis2.events import EventQuery, iter_events
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.testing import FakeDhis2

VERSIONS = ["2.36", "2.37", "2.38", "2.39", "2.40", "2.41", "2.42", "2.43"]
PROGRAM = "OrderProg01"
STAGE = "OrderStage1"
ROOT, DISTRICT, FACILITY_A, FACILITY_B = "RootUnit001", "District001", "FacilityA01", "FacilityB01"
QTY = "QtyAmox0001"
START = dt.datetime(2026, 11, 1, 8, 0, 0)


def no_sleep(_: float) -> None:
    """Retries never wait in tests."""


def seed(fake: FakeDhis2, total: int, *, same_time: bool = False) -> dict[str, str]:
    """An order program with ``total`` completed events; returns uid -> quantity."""
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(DISTRICT, "DIST", "District", parent=ROOT)
    fake.add_org_unit(FACILITY_A, "FAC_A", "Facility A", parent=DISTRICT)
    fake.add_org_unit(FACILITY_B, "FAC_B", "Facility B", parent=DISTRICT)
    fake.add_data_element(QTY, "AMOX250", "Amoxicillin 250mg", domain_type="TRACKER")
    fake.add_program(PROGRAM, "Order program", stages={STAGE: (QTY,)}, org_units=(FACILITY_A,))
    expected = {}
    for n in range(total):
        uid = f"Ev{n:09d}"
        stamp = START if same_time else START + dt.timedelta(minutes=n)
        fake.add_event(
            uid,
            PROGRAM,
            FACILITY_A if n % 2 else FACILITY_B,
            program_stage=STAGE,
            data_values={QTY: str(n * 10)},
            occurred_at=stamp,
            updated_at=stamp,
            completed_at=stamp,
        )
        expected[uid] = str(n * 10)
    return expected


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def session_for(fake: FakeDhis2, *, legacy_events: bool = False) -> Dhis2Session:
    return Dhis2Session(
        fake.url, BasicAuth("admin", "district"), sleep=no_sleep, legacy_events=legacy_events
    )


def completed(session: Dhis2Session, page_size: int = 50) -> Iterator[str]:
    query = EventQuery(program=PROGRAM, status="COMPLETED", page_size=page_size)
    return (event.uid for event in iter_events(session, query))


@pytest.mark.parametrize("total", [0, 1, 49, 50, 51, 100, 300])
def test_every_completed_event_is_read_exactly_once(version: str, total: int) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, total)
        uids = list(completed(session_for(fake)))
    assert sorted(uids) == sorted(expected)
    assert len(uids) == len(set(uids))


def test_values_and_timestamps_are_what_the_server_holds(version: str) -> None:
    with FakeDhis2(version=version, time_zone="Africa/Nairobi") as fake:
        expected = seed(fake, 7)
        query = EventQuery(program=PROGRAM, status="COMPLETED")
        events = list(iter_events(session_for(fake), query))
    assert {e.uid: e.value(QTY) for e in events} == expected
    first = next(e for e in events if e.uid == "Ev000000000")
    assert first.updated_at is not None and first.updated_at.utcoffset() == dt.timedelta(hours=3)
    assert first.updated_at.replace(tzinfo=None) == START
    assert first.status == "COMPLETED" and first.program == PROGRAM


def test_events_edited_while_paging_are_neither_lost_nor_doubled(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 120)
        fake.now = START + dt.timedelta(days=1)
        reader = completed(session_for(fake), page_size=25)
        first = list(itertools.islice(reader, 30))
        for uid in [*first[:5], "Ev000000100"]:  # read and unread events get newer updatedAt
            fake.touch_event(uid)
        rest = list(reader)
    uids = first + rest
    assert sorted(uids) == sorted(expected)
    assert len(uids) == len(set(uids))


def test_a_run_of_identical_timestamps_longer_than_a_page(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 130, same_time=True)
        uids = list(completed(session_for(fake), page_size=50))
    assert sorted(uids) == sorted(expected)


def test_dropped_connection_mid_paging_reads_everything_once(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 160)
        reader = completed(session_for(fake), page_size=50)
        head = list(itertools.islice(reader, 60))
        fake.inject("GET", "/api/tracker/events", fault="drop")
        fake.inject("GET", "/api/tracker/events", status=503)
        uids = head + list(reader)
    assert sorted(uids) == sorted(expected)


@pytest.mark.parametrize("version", ["2.36", "2.40", "2.41"])
def test_oauth2_token_expiring_mid_paging_reads_everything_once(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 150)
        fake.add_oauth_client("lmis", "client-secret")
        auth = BodyAuth("admin", "district", client_id="lmis", client_secret="client-secret")
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        reader = completed(session, page_size=50)
        head = list(itertools.islice(reader, 70))
        fake.expire_tokens()
        uids = head + list(reader)
    assert sorted(uids) == sorted(expected)
    assert auth.refreshes == 1


def test_updated_after_returns_only_newer_events(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        seed(fake, 20)
        since = START + dt.timedelta(minutes=15)
        query = EventQuery(program=PROGRAM, status="COMPLETED", updated_after=since)
        uids = sorted(e.uid for e in iter_events(session_for(fake), query))
    assert uids == [f"Ev{n:09d}" for n in range(15, 20)]


def test_org_unit_reads_its_descendants(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        seed(fake, 10)
        session = session_for(fake)
        district = {
            e.uid for e in iter_events(session, EventQuery(program=PROGRAM, org_unit=DISTRICT))
        }
        facility = {
            e.uid for e in iter_events(session, EventQuery(program=PROGRAM, org_unit=FACILITY_A))
        }
    assert len(district) == 10
    assert facility == {f"Ev{n:09d}" for n in range(1, 10, 2)}


def test_active_events_are_not_completed_requisitions(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        seed(fake, 3)
        fake.add_event("Active00001", PROGRAM, FACILITY_A, status="ACTIVE", program_stage=STAGE)
        uids = set(completed(session_for(fake)))
    assert "Active00001" not in uids and len(uids) == 3


@pytest.mark.parametrize("version", ["2.36", "2.38", "2.41"])
def test_legacy_events_api_reads_the_same_set(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 75)
        query = EventQuery(program=PROGRAM, status="COMPLETED", page_size=20)
        events = list(iter_events(session_for(fake, legacy_events=True), query))
    assert {e.uid: e.value(QTY) for e in events} == expected
    assert all(r.path == "/api/events" for r in fake.requests if "events" in r.path)


def test_data_element_codes_when_the_scheme_is_code(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        seed(fake, 2)
        query = EventQuery(program=PROGRAM, data_element_id_scheme="CODE")
        events = list(iter_events(session_for(fake), query))
    assert {dv.data_element for e in events for dv in e.data_values} == {"AMOX250"}


def seed_run_then_more(fake: FakeDhis2) -> set[str]:
    """45 events updated in the same millisecond, then 10 updated later."""
    uids = set(seed(fake, 45, same_time=True))
    for n in range(10):
        stamp = START + dt.timedelta(minutes=5 + n)
        uid = f"Later{n:06d}"
        fake.add_event(uid, PROGRAM, FACILITY_A, program_stage=STAGE, updated_at=stamp)
        uids.add(uid)
    return uids


@pytest.mark.parametrize("workers", [1, 3])
def test_a_run_of_identical_timestamps_edited_while_read_loses_nothing(
    version: str, workers: int
) -> None:
    """Paged by offset, the run would shrink under the reader and shift events past it."""
    with FakeDhis2(version=version) as fake:
        expected = seed_run_then_more(fake)
        fake.now = START + dt.timedelta(days=1)
        query = EventQuery(program=PROGRAM, status="COMPLETED", page_size=10)
        reader = iter_events(session_for(fake), query, workers=workers)
        head = [e.uid for e in itertools.islice(reader, 10)]
        for uid in head[:4]:  # read members of the run get a newer updatedAt
            fake.touch_event(uid)
        uids = head + [e.uid for e in reader]
    assert sorted(uids) == sorted(expected)


@pytest.mark.parametrize("version", ["2.36", "2.41"])
def test_legacy_events_api_reads_an_edited_run_of_identical_timestamps(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed_run_then_more(fake)
        fake.now = START + dt.timedelta(days=1)
        query = EventQuery(program=PROGRAM, status="COMPLETED", page_size=10)
        reader = iter_events(session_for(fake, legacy_events=True), query)
        head = [e.uid for e in itertools.islice(reader, 10)]
        for uid in head[:4]:
            fake.touch_event(uid)
        uids = head + [e.uid for e in reader]
    assert sorted(uids) == sorted(expected)


def test_a_run_longer_than_ten_pages_is_paged_by_offset(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 130, same_time=True)
        uids = list(completed(session_for(fake), page_size=10))
    assert sorted(uids) == sorted(expected)
    assert max(int(r.query.get("page", ["1"])[0]) for r in fake.requests) >= 13  # by offset
