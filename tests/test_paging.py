"""One page loop, one stop rule: a metadata list and the keyset cursor of events page alike.

Both paths run through the session's ``PageLoop`` over real HTTP to the offline DHIS2, so a
server that ignores paging, or a 2.42 page without ``nextPage``, is met the same way on each.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.events import EventQuery, iter_event_pages
from dhis2_lmis.dhis2.records import Event
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import ResponseFormatError
from dhis2_lmis.testing import FakeDhis2

PROGRAM, UNIT = "OrderProg01", "FacilityA01"
START = dt.datetime(2026, 11, 1, 8, 0, 0)


def session_for(fake: FakeDhis2, http: requests.Session | None = None) -> Dhis2Session:
    return Dhis2Session(fake.url, BasicAuth("admin", "district"), sleep=lambda _: None, http=http)


def event_json(uid: str, minute: int) -> dict[str, Any]:
    stamp = (START + dt.timedelta(minutes=minute)).isoformat(timespec="milliseconds")
    return {
        "event": uid,
        "program": PROGRAM,
        "orgUnit": UNIT,
        "status": "COMPLETED",
        "occurredAt": stamp,
        "updatedAt": stamp,
        "dataValues": [],
    }


def metadata_pages(session: Dhis2Session) -> Iterator[list[str]]:
    """The list path: ``iter_pages`` over a metadata collection."""
    for page in session.iter_pages(
        "organisationUnits", {"fields": "id"}, items_key="organisationUnits", page_size=2
    ):
        yield [str(item["id"]) for item in page.items]  # type: ignore[index,call-overload]


def event_list_pages(session: Dhis2Session) -> Iterator[list[str]]:
    """The list path over the events endpoint, as the stock pusher reads it."""
    dialect = session.dialect
    for page in session.iter_pages(
        dialect.events_path,
        items_key=dialect.events_keys[0],
        page_size=2,
        link_paging=dialect.next_page_link,
    ):
        yield [str(item["event"]) for item in page.items]  # type: ignore[index,call-overload]


def cursor_pages(session: Dhis2Session) -> Iterator[list[str]]:
    """The keyset cursor path: ``iter_event_pages``."""
    for page in iter_event_pages(session, EventQuery(program=PROGRAM, page_size=2)):
        yield [event.uid for event in page]


Reader = Callable[[Dhis2Session], Iterator[list[str]]]
EVENT_PAGE = {
    "pager": {"page": 1, "pageSize": 2},
    "events": [event_json("EvA00000001", 0), event_json("EvB00000001", 1)],
}
REPEATED: dict[str, tuple[str, dict[str, Any], Reader, list[str]]] = {
    "metadata list": (
        "/api/organisationUnits",
        {
            "pager": {"page": 1, "pageCount": 3, "total": 6, "pageSize": 2},
            "organisationUnits": [{"id": "OrgUnitA001"}, {"id": "OrgUnitB001"}],
        },
        metadata_pages,
        ["OrgUnitA001", "OrgUnitB001"],
    ),
    "events as a list": (
        "/api/tracker/events",
        EVENT_PAGE,
        event_list_pages,
        ["EvA00000001", "EvB00000001"],
    ),
    "events by keyset cursor": (
        "/api/tracker/events",
        EVENT_PAGE,
        cursor_pages,
        ["EvA00000001", "EvB00000001"],
    ),
}


@pytest.mark.parametrize("path", list(REPEATED))
def test_a_server_that_ignores_paging_is_refused_alike_on_every_path(path: str) -> None:
    endpoint, body, reader, first_page = REPEATED[path]
    with FakeDhis2(version="2.41") as fake:
        fake.inject(
            "GET",
            endpoint,
            status=200,
            body=json.dumps(body),
            times=10,
            content_type="application/json",
        )
        read: list[list[str]] = []
        with session_for(fake) as session, pytest.raises(ResponseFormatError) as raised:
            read.extend(reader(session))
        asked = [r for r in fake.requests if r.path == endpoint]

    assert "page 2 repeats page 1: the server ignores paging here" in str(raised.value)
    assert read == [first_page]  # the first page once, then the refusal; never an endless read
    assert len(asked) <= 3


@pytest.mark.parametrize(("version", "requests_made"), [("2.41", 2), ("2.42", 1)])
@pytest.mark.parametrize("reader", [event_list_pages, cursor_pages], ids=["list", "cursor"])
def test_a_full_page_is_the_last_by_the_same_rule_on_both_paths(
    version: str, requests_made: int, reader: Reader
) -> None:
    # 2.42 says "more" only by pager.nextPage: a full page without one is the last. 2.41 has
    # no such signal in this answer, so a full page asks once more (and finds nothing).
    with FakeDhis2(version=version) as fake:
        fake.add_org_unit(UNIT, "FAC_A", "Facility A")
        fake.add_program(PROGRAM, "Order program", org_units=(UNIT,))
        fake.inject(
            "GET",
            "/api/tracker/events",
            status=200,
            body=json.dumps(EVENT_PAGE),
            content_type="application/json",
        )
        with session_for(fake) as session:
            read = list(reader(session))
        asked = [r for r in fake.requests if r.path == "/api/tracker/events"]

    assert read == [["EvA00000001", "EvB00000001"]]
    assert len(asked) == requests_made


def test_no_page_of_events_is_held_while_the_next_is_read() -> None:
    """Memory stays flat: a page the caller let go is gone before the next answer is decoded,
    on plain pages and around a run of identical timestamps read whole."""
    with FakeDhis2(version="2.41") as fake:
        fake.add_org_unit(UNIT, "FAC_A", "Facility A")
        fake.add_program(PROGRAM, "Order program", org_units=(UNIT,))
        minutes = [0, 1, 2, 3, 3, 3, 3, 4, 5, 6]  # a run of four fills a page of three
        for n, minute in enumerate(minutes):
            stamp = START + dt.timedelta(minutes=minute)
            fake.add_event(f"Ev{n:09d}", PROGRAM, UNIT, updated_at=stamp, occurred_at=stamp)

        let_go: list[weakref.ref[Event]] = []
        still_held: list[int] = []

        def on_answer(response: requests.Response, *args: object, **kwargs: object) -> None:
            if response.url.split("?")[0].endswith("/tracker/events"):
                still_held.append(sum(ref() is not None for ref in let_go))

        http = requests.Session()
        http.hooks["response"].append(on_answer)
        with session_for(fake, http) as session:
            query = EventQuery(program=PROGRAM, page_size=3)
            for page in iter_event_pages(session, query):
                let_go.extend(weakref.ref(event) for event in page)
                del page
        runs_read_whole = [r for r in fake.requests if r.query.get("pageSize") == ["30"]]

    assert len(let_go) == len(minutes)  # every event, each once
    assert runs_read_whole  # the run was read in one answer
    assert len(still_held) > 3 and still_held == [0] * len(still_held)
