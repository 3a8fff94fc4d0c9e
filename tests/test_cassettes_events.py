"""iter_events against recorded event pages of every dialect, replayed by vcrpy.

Each cassette in tests/cassettes/events/ holds a real ``/api/system/info`` (the version picks
the dialect, ``serverTimeZoneId`` the time zone) and one events page; the cassette's request
URI is the one the dialect must send (parameter names, ``order``, paging), so a request in the
wrong dialect finds no recording and fails. Sources: tests/cassettes/events/SOURCE.md.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from dateutil import tz
from vcr.errors import CannotOverwriteExistingCassetteException

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.convert import structure_event
from dhis2_lmis.dhis2.events import EventQuery, iter_events
from dhis2_lmis.dhis2.records import Event
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import ConfigError, UnsupportedVersionError
from tests._cassettes import base_url, cassette_names, recorded_bodies, replay

# cassette, version, time zone, items key of the dialect
TRACKER = [
    ("events/tracker_instances_2.36.yaml", (2, 36, 13, 2), "Etc/UTC", "instances"),
    ("events/tracker_instances_2.40.yaml", (2, 40, 4, 1), "Etc/UTC", "instances"),
    ("events/tracker_events_2.41.yaml", (2, 41, 0, 1), "Etc/UTC", "events"),
    ("events/tracker_events_2.43.yaml", (2, 43, 0, 0), "Europe/Oslo", "events"),
]
TRACKER_IDS = [c[0].split("/")[1].removesuffix(".yaml") for c in TRACKER]
LEGACY = "events/legacy_events_2.28.yaml"
ANDROID_PROGRAM = "lxAQ7Zs9VYR"


def _session(cassette: str, *, legacy_events: bool = False) -> Dhis2Session:
    return Dhis2Session(base_url(cassette), auth=BasicAuth("u", "p"), legacy_events=legacy_events)


def _read(cassette: str, query: EventQuery, *, legacy: bool = False) -> list[Event]:
    with replay(cassette) as recording, _session(cassette, legacy_events=legacy) as session:
        events = list(iter_events(session, query))
        assert recording.all_played
        assert recording.play_count == 2  # system/info once, then the single page
    return events


def test_every_events_cassette_is_exercised() -> None:
    assert sorted([c[0] for c in TRACKER] + [LEGACY]) == cassette_names("events")


@pytest.mark.parametrize(("cassette", "version", "zone", "items_key"), TRACKER, ids=TRACKER_IDS)
def test_cassette_version_selects_the_dialect_of_its_page(
    cassette: str, version: tuple[int, ...], zone: str, items_key: str
) -> None:
    with replay(cassette), _session(cassette) as session:
        assert session.version.parts == version
        dialect = session.dialect
    assert not dialect.legacy_events
    assert dialect.events_path == "tracker/events"
    assert dialect.events_keys[0] == items_key


@pytest.mark.parametrize(("cassette", "version", "zone", "items_key"), TRACKER, ids=TRACKER_IDS)
def test_iter_events_reads_both_tracker_envelopes(
    cassette: str, version: tuple[int, ...], zone: str, items_key: str
) -> None:
    events = _read(cassette, EventQuery(program=ANDROID_PROGRAM, page_size=50))
    assert [e.uid for e in events] == ["single1", "single2"]
    assert [e.status for e in events] == ["COMPLETED", "ACTIVE"]
    assert {e.program for e in events} == {ANDROID_PROGRAM}
    assert {e.program_stage for e in events} == {"dBwrot7S420"}
    assert {e.org_unit for e in events} == {"DiszpKrYNg8"}
    assert {e.attribute_option_combo for e in events} == {"bRowv6yZOF2"}
    assert [len(e.data_values) for e in events] == [0, 0]
    assert [e.problems for e in events] == [(), ()]


@pytest.mark.parametrize(("cassette", "version", "zone", "items_key"), TRACKER, ids=TRACKER_IDS)
def test_iter_events_places_timestamps_in_the_recorded_server_time_zone(
    cassette: str, version: tuple[int, ...], zone: str, items_key: str
) -> None:
    events = _read(cassette, EventQuery(program=ANDROID_PROGRAM, page_size=50))
    server = tz.gettz(zone)
    assert [e.occurred_at for e in events] == [
        datetime(2018, 2, 27, tzinfo=server),
        datetime(2017, 2, 27, tzinfo=server),
    ]
    assert [e.scheduled_at for e in events] == [
        datetime(2017, 1, 28, tzinfo=server),
        datetime(2018, 2, 28, tzinfo=server),
    ]
    assert all(e.occurred_at is not None and e.occurred_at.tzinfo is server for e in events)


def test_oslo_server_midnight_is_eleven_pm_utc_the_day_before() -> None:
    events = _read(
        "events/tracker_events_2.43.yaml", EventQuery(program=ANDROID_PROGRAM, page_size=50)
    )
    first = events[0].occurred_at
    assert first is not None
    assert first.utcoffset() == timedelta(hours=1)
    assert first == datetime(2018, 2, 26, 23, tzinfo=timezone.utc)


@pytest.mark.parametrize(("cassette", "version", "zone", "items_key"), TRACKER, ids=TRACKER_IDS)
def test_tracked_entity_is_read_from_the_legacy_name_in_a_tracker_page(
    cassette: str, version: tuple[int, ...], zone: str, items_key: str
) -> None:
    events = _read(cassette, EventQuery(program=ANDROID_PROGRAM, page_size=50))
    assert [e.tracked_entity for e in events] == [None, "nWrB0TfWlvh"]


@pytest.mark.parametrize(("cassette", "version", "zone", "items_key"), TRACKER, ids=TRACKER_IDS)
def test_iter_events_stops_after_a_short_page(
    cassette: str, version: tuple[int, ...], zone: str, items_key: str
) -> None:
    """Two events on a page of 50: no second request (which the cassette would refuse)."""
    events = _read(cassette, EventQuery(program=ANDROID_PROGRAM, page_size=50))
    assert len(events) == 2


@pytest.mark.parametrize(
    ("cassette", "version", "zone", "items_key"), TRACKER[:3], ids=TRACKER_IDS[:3]
)
def test_legacy_flag_sends_the_read_to_api_events_instead(
    cassette: str, version: tuple[int, ...], zone: str, items_key: str
) -> None:
    """The cassette holds only the tracker page, so the legacy request finds no recording."""
    with (
        replay(cassette),
        _session(cassette, legacy_events=True) as session,
        pytest.raises(CannotOverwriteExistingCassetteException, match=r"/api/events\?"),
    ):
        list(iter_events(session, EventQuery(program=ANDROID_PROGRAM)))


def test_legacy_flag_is_refused_on_a_server_without_api_events() -> None:
    cassette = "events/tracker_events_2.43.yaml"
    with (
        replay(cassette),
        _session(cassette, legacy_events=True) as session,
        pytest.raises(ConfigError, match="no legacy /api/events"),
    ):
        list(iter_events(session, EventQuery(program=ANDROID_PROGRAM)))


# -- legacy /api/events (2.28) -------------------------------------------------------------------


def _legacy_query() -> EventQuery:
    return EventQuery(program="eBAyeGv0exc", org_unit="DiszpKrYNg8", page_size=50)


@pytest.mark.parametrize("legacy", [False, True], ids=["auto", "legacy_events"])
def test_a_228_server_is_refused_as_older_than_supported(legacy: bool) -> None:
    with (
        replay(LEGACY) as recording,
        _session(LEGACY, legacy_events=legacy) as session,
        pytest.raises(UnsupportedVersionError, match=r"2\.28.* older than 2\.36"),
    ):
        list(iter_events(session, _legacy_query()))
    assert recording.play_count == 1  # system/info only: no events were asked for


def _legacy_page() -> list[Event]:
    """The recorded 2.28 ``/api/events`` page, read by the converter (no time zone known)."""
    (body,) = [json.loads(raw) for uri, raw in recorded_bodies(LEGACY) if "/api/events" in uri]
    return [structure_event(raw) for raw in body["events"]]


def test_the_converter_reads_the_legacy_events_page() -> None:
    (event,) = _legacy_page()
    assert event.uid == "GLzj6nka7Ae"
    assert event.status == "ACTIVE"
    assert event.program == "eBAyeGv0exc"
    assert event.program_stage == "Zj7UnCAulEk"
    assert event.org_unit == "DiszpKrYNg8"
    assert event.attribute_option_combo == "bRowv6yZOF2"
    assert event.stored_by == "system"
    assert event.deleted is False
    assert event.notes == ()
    assert event.problems == ()


def test_legacy_timestamps_stay_naive_without_server_time_zone() -> None:
    (event,) = _legacy_page()
    assert event.occurred_at == datetime(2016, 11, 4)
    assert event.scheduled_at == datetime(2017, 8, 3, 17, 59, 10, 83000)
    assert event.created_at == datetime(2016, 11, 7, 15, 21, 36, 387000)
    assert event.updated_at == datetime(2017, 8, 3, 17, 59, 10, 84000)
    assert event.occurred_at.tzinfo is None


def test_legacy_data_values_keep_their_strings_and_timestamps() -> None:
    (event,) = _legacy_page()
    assert len(event.data_values) == 9
    assert [dv.data_element for dv in event.data_values][:3] == [
        "qrur9Dvnyt5",
        "GieVkTxp4HH",
        "vV9UWAZohSf",
    ]
    assert event.value("qrur9Dvnyt5") == "25"
    assert event.value("eMyVanycQSC") == "2014-11-04"
    assert event.value("oZg33kd9taw") == "Male"
    first = event.data_values[0]
    assert first.stored_by == "system"
    assert first.provided_elsewhere is False
    assert first.created_at == datetime(2014, 11, 15, 14, 55, 22, 851000)
    assert first.updated_at == datetime(2016, 8, 3, 17, 57, 16, 70000)
