"""The contract with a real DHIS2: what the library assumes about the server, checked live.

Read-only by default; the one push uses ``dryRun=true`` unless ``DHIS2_LIVE_WRITE=1``, and
even then it names a data element that does not exist, so the server stores nothing. See
tests/live/README.md for the variables and for recording cassettes.
"""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest

from dhis2_lmis import Dhis2Lmis, Event, EventQuery, ImportFailedError, iter_events
from dhis2_lmis.dhis2.session import Dhis2Session
from tests.live._live import SKIP_REASON, LiveSettings, live_settings

pytestmark = pytest.mark.skipif(live_settings() is None, reason=SKIP_REASON)

UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
PAGE = 5
# A well-formed UID no server has: the push can be real and still store nothing.
NO_SUCH_DATA_ELEMENT = "LmLiveNoDe1"


def first_program(session: Dhis2Session) -> str:
    body = session.get_json("programs", {"fields": "id", "pageSize": 1, "order": "id:asc"})
    programs = body.get("programs") if isinstance(body, dict) else None
    assert isinstance(programs, list), f"unexpected /api/programs answer: {body!r}"
    assert programs, "the user sees no program: set DHIS2_LIVE_PROGRAM"
    program = programs[0]
    assert isinstance(program, dict)
    uid = program.get("id")
    assert isinstance(uid, str)
    return uid


def first_org_unit(session: Dhis2Session) -> str:
    me = session.get_json("me", {"fields": "organisationUnits[id]"})
    units = me.get("organisationUnits") if isinstance(me, dict) else None
    assert isinstance(units, list), "unexpected /api/me answer"
    assert units, "the user has no data capture org unit"
    unit = units[0]
    assert isinstance(unit, dict)
    uid = unit.get("id")
    assert isinstance(uid, str)
    return uid


def test_connection_succeeds(lmis: Dhis2Lmis) -> None:
    check = lmis.test_connection()
    assert check.ok, check.message
    assert check.server_version


def test_system_info_version_parses(lmis: Dhis2Lmis) -> None:
    version = lmis.session.version
    assert version.major == 2
    assert version.minor >= 28
    assert str(lmis.session.server_info["version"]).startswith(f"{version.major}.{version.minor}")


def test_one_page_of_events_converts_without_problems(lmis: Dhis2Lmis, live: LiveSettings) -> None:
    program = live.program or first_program(lmis.session)
    query = EventQuery(program=program, page_size=PAGE)
    events = list(itertools.islice(iter_events(lmis.session, query), PAGE))
    assert len(events) <= PAGE
    for event in events:
        assert isinstance(event, Event)
        assert UID.match(event.uid), event.uid
        assert event.problems == (), event.problems
        assert event.updated_at is not None


def test_org_unit_metadata_pages_do_not_repeat(lmis: Dhis2Lmis) -> None:
    pages = list(
        itertools.islice(
            lmis.session.iter_pages(
                "organisationUnits",
                {"fields": "id,code,name", "order": "id:asc"},
                items_key="organisationUnits",
                page_size=2,
            ),
            2,
        )
    )
    assert pages, "the server returned no organisation units"
    assert [page.number for page in pages] == list(range(1, len(pages) + 1))
    ids = [item["id"] for page in pages for item in page.items if isinstance(item, dict)]
    assert all(len(page.items) <= 2 for page in pages)
    assert len(ids) == len(set(ids))
    assert all(UID.match(str(uid)) for uid in ids)


def test_data_value_push_reports_the_unknown_data_element(
    lmis: Dhis2Lmis, live: LiveSettings
) -> None:
    dry_run = not live.write
    builder = lmis.data_value_set(period=date.today(), org_unit=first_org_unit(lmis.session))
    builder.add(NO_SUCH_DATA_ELEMENT, 1)
    try:
        summary = lmis.push_data_values(builder, dry_run=dry_run)
    except ImportFailedError as exc:  # some versions abort a push whose every value is refused
        summary = exc.summary
    assert summary.dry_run is dry_run
    assert summary.imported == summary.updated == 0
    assert summary.conflicts, summary
    assert any(
        NO_SUCH_DATA_ELEMENT in f"{c.object} {c.value}" or 0 in c.indexes for c in summary.conflicts
    ), summary
