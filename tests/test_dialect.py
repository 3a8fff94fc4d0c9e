"""One dialect per session: resolved once from /api/system/info, newest for a newer server,
a clear error for an older one, and the same names whichever reader or writer asks."""

from __future__ import annotations

import json
import logging

import pytest

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.events import EventQuery, iter_events
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.dhis2.versions import NEWEST_KNOWN, ServerVersion, dialect_for
from dhis2_lmis.errors import ConfigError, UnsupportedVersionError
from dhis2_lmis.testing import FakeDhis2

PROGRAM = "OrderProg01"
FACILITY = "FacilityA01"


def seeded(version: str) -> FakeDhis2:
    fake = FakeDhis2(version=version)
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A")
    fake.add_program(PROGRAM, "Orders", org_units=(FACILITY,))
    for _ in range(3):
        fake.add_event(None, PROGRAM, FACILITY)
    return fake


def session_for(fake: FakeDhis2, **options: bool) -> Dhis2Session:
    return Dhis2Session(fake.url, BasicAuth("admin", "district"), sleep=lambda _: None, **options)


def claim_version(fake: FakeDhis2, version: str) -> None:
    """Make the next system/info answer report ``version`` (the fake speaks its own dialect)."""
    info = {"version": version, "serverTimeZoneId": "Etc/UTC", "revision": "abc"}
    fake.inject(
        "GET",
        "/api/system/info",
        status=200,
        body=json.dumps(info),
        content_type="application/json",
    )


def test_the_dialect_is_resolved_once_per_session() -> None:
    with seeded("2.41") as fake:
        session = session_for(fake)
        query = EventQuery(program=PROGRAM)
        first = list(iter_events(session, query))
        second = list(iter_events(session, query))
        assert session.dialect is session.dialect
    assert len(first) == len(second) == 3
    assert [r.path for r in fake.requests].count("/api/system/info") == 1


def test_a_newer_server_gets_the_newest_dialect_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="dhis2_lmis")
    with seeded("2.43") as fake:
        claim_version(fake, "2.44.0")
        session = session_for(fake)
        events = list(iter_events(session, EventQuery(program=PROGRAM)))
        list(iter_events(session, EventQuery(program=PROGRAM)))
    assert len(events) == 3
    assert session.dialect == dialect_for(ServerVersion(2, 44), legacy_events=False)
    newest = dialect_for(ServerVersion(*NEWEST_KNOWN))
    assert session.dialect.events_keys == newest.events_keys
    assert session.dialect.next_page_link == newest.next_page_link
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2.44.0" in warnings[0] and "2.43" in warnings[0]


@pytest.mark.parametrize("version", ["2.35.4", "2.28"])
def test_an_older_server_is_a_clear_error_before_anything_is_read(version: str) -> None:
    with seeded("2.36") as fake:
        claim_version(fake, version)
        session = session_for(fake)
        with pytest.raises(UnsupportedVersionError, match=r"older than 2\.36"):
            list(iter_events(session, EventQuery(program=PROGRAM)))
    assert [r.path for r in fake.requests] == ["/api/system/info"]


def test_legacy_events_where_they_are_gone_is_a_configuration_error() -> None:
    with seeded("2.42") as fake:
        session = session_for(fake, legacy_events=True)
        with pytest.raises(ConfigError, match=r"no legacy /api/events.*tracker_api"):
            list(iter_events(session, EventQuery(program=PROGRAM)))
    assert [r.path for r in fake.requests] == ["/api/system/info"]


@pytest.mark.parametrize("version", ["2.36", "2.39", "2.41"])
def test_legacy_events_read_the_legacy_endpoint_and_names(version: str) -> None:
    with seeded(version) as fake:
        session = session_for(fake, legacy_events=True)
        events = list(iter_events(session, EventQuery(program=PROGRAM)))
    assert len(events) == 3
    reads = [r for r in fake.requests if r.path.endswith("events")]
    assert reads and all(r.path == "/api/events" for r in reads)
    assert all("ouMode" in r.query and "orgUnitMode" not in r.query for r in reads)
