"""Dhis2Session against recorded DHIS2 answers of 2.28 to 2.43, replayed by vcrpy.

The cassettes (tests/cassettes/session/, datavaluesets/) hold upstream bodies byte for byte;
SOURCE.md beside them names each recording's repository, commit, blob and licence.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from datetime import datetime, timedelta

import pytest
import requests
from dateutil import tz
from vcr.errors import CannotOverwriteExistingCassetteException

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.convert import current_username
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.dhis2.versions import ServerVersion
from tests._cassettes import CASSETTES, base_url, cassette_names, recorded_bodies, replay

UTC_NAME = "Etc/UTC"

# cassette, (major, minor, patch, hotfix), version text, serverTimeZoneId
SYSTEM_INFO = [
    ("session/blsq-dhis2_2.28_system_info.yaml", (2, 28, 0, 0), "2.28", None),
    ("session/openhexa_2.36_dhis2_init.yaml", (2, 36, 13, 2), "2.36.13.2", UTC_NAME),
    ("session/openhexa_2.37_authenticate.yaml", (2, 37, 9, 1), "2.37.9.1", UTC_NAME),
    (
        "session/aggregate-data-entry_38_static_resources.yaml",
        (2, 38, 0, 0),
        "2.38-SNAPSHOT",
        UTC_NAME,
    ),
    ("session/openhexa_2.38_dhis2_init.yaml", (2, 38, 7, 0), "2.38.7", UTC_NAME),
    ("session/openhexa_2.40_authenticate.yaml", (2, 40, 0, 1), "2.40.0.1", UTC_NAME),
    (
        "session/aggregate-data-entry_40_static_resources.yaml",
        (2, 40, 1, 0),
        "2.40.1-SNAPSHOT",
        UTC_NAME,
    ),
    ("session/openhexa_2.40_dhis2_init.yaml", (2, 40, 4, 1), "2.40.4.1", UTC_NAME),
    ("session/android-sdk_system_info.yaml", (2, 41, 0, 0), "2.41.0", UTC_NAME),
    ("session/openhexa_2.41_dhis2_init.yaml", (2, 41, 0, 1), "2.41.0.1", UTC_NAME),
    (
        "session/aggregate-data-entry_43_static_resources.yaml",
        (2, 43, 0, 0),
        "2.43-SNAPSHOT",
        "Europe/Oslo",
    ),
]


def _session(cassette: str) -> Dhis2Session:
    return Dhis2Session(base_url(cassette), auth=BasicAuth("u", "p"))


def _version_of(cassette: str) -> ServerVersion:
    with replay(cassette), _session(cassette) as session:
        return session.version


# -- /api/system/info --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cassette", "parts", "text", "zone"), SYSTEM_INFO, ids=[c[2] for c in SYSTEM_INFO]
)
def test_version_and_time_zone_come_from_recorded_system_info(
    cassette: str, parts: tuple[int, int, int, int], text: str, zone: str | None
) -> None:
    with replay(cassette) as recording, _session(cassette) as session:
        version = session.version
        time_zone = session.time_zone
        assert session.server_info["version"] == text
        assert recording.play_count == 1  # cached: one GET /api/system/info
    assert version.parts == parts
    assert version == parts
    assert str(version) == text
    if zone is None:
        assert time_zone is None
    else:
        assert time_zone is not None
        assert time_zone == tz.gettz(zone)


def test_recorded_versions_sort_in_release_order() -> None:
    versions = [_version_of(cassette) for cassette, *_ in SYSTEM_INFO]
    shuffled = versions[::-1]
    assert [str(v) for v in sorted(shuffled)] == [text for _, _, text, _ in SYSTEM_INFO]


def test_snapshot_version_compares_as_its_dot_zero_release() -> None:
    snapshot_38 = _version_of("session/aggregate-data-entry_38_static_resources.yaml")
    snapshot_40 = _version_of("session/aggregate-data-entry_40_static_resources.yaml")
    assert snapshot_38 == (2, 38)
    assert snapshot_38 < ServerVersion.parse("2.38.7")
    assert ServerVersion.parse("2.40.0.1") < snapshot_40 < ServerVersion.parse("2.40.4.1")
    assert snapshot_40 >= (2, 40, 1)
    assert not snapshot_40 >= (2, 41)


def test_oslo_server_time_zone_follows_daylight_saving() -> None:
    cassette = "session/aggregate-data-entry_43_static_resources.yaml"
    with replay(cassette), _session(cassette) as session:
        zone = session.time_zone
    assert zone is not None
    assert zone.utcoffset(datetime(2025, 1, 15, 12)) == timedelta(hours=1)
    assert zone.utcoffset(datetime(2025, 10, 13, 16)) == timedelta(hours=2)


def test_system_info_without_time_zone_id_gives_no_time_zone() -> None:
    """2.28 had no ``serverTimeZoneId``: timestamps must stay naive, not be guessed as UTC."""
    cassette = "session/blsq-dhis2_2.28_system_info.yaml"
    with replay(cassette), _session(cassette) as session:
        assert "serverTimeZoneId" not in session.server_info
        assert session.time_zone is None


# -- /api/me -----------------------------------------------------------------------------------

# cassette, path below /api/, fields, the user id (None when not asked for)
ME = [
    ("session/aggregate-data-entry_38_static_resources.yaml", "38/me", "id", "xE7jOejl9FI"),
    (
        "session/aggregate-data-entry_38_static_resources.yaml",
        "38/me",
        "authorities,avatar,email,name,settings",
        None,
    ),
    (
        "session/aggregate-data-entry_38_static_resources.yaml",
        "38/me",
        "organisationUnits[id,level]",
        None,
    ),
    (
        "session/aggregate-data-entry_38_static_resources.yaml",
        "38/me",
        "organisationUnits[id]",
        None,
    ),
    ("session/aggregate-data-entry_40_static_resources.yaml", "40/me", "id", "GOLswS44mh8"),
    (
        "session/aggregate-data-entry_40_static_resources.yaml",
        "40/me",
        "authorities,avatar,email,name,settings",
        None,
    ),
    (
        "session/aggregate-data-entry_40_static_resources.yaml",
        "40/me",
        "organisationUnits[id,level,path]",
        None,
    ),
    ("session/aggregate-data-entry_43_static_resources.yaml", "43/me", "id", "GOLswS44mh8"),
    (
        "session/aggregate-data-entry_43_static_resources.yaml",
        "43/me",
        "authorities,avatar,email,name,settings",
        None,
    ),
    (
        "session/aggregate-data-entry_43_static_resources.yaml",
        "43/me",
        "organisationUnits[id,level,path]",
        None,
    ),
    ("session/maintenance_current_user.yaml", "me", None, None),
]


@pytest.mark.parametrize(("cassette", "path", "fields", "user_id"), ME)
def test_current_username_is_none_when_me_answer_has_no_username(
    cassette: str, path: str, fields: str | None, user_id: str | None
) -> None:
    """None of the recorded ``/api/me`` answers asked for ``username``; the display ``name``
    ("John Traore", "Tom Wakiki") must not be taken for it."""
    with replay(cassette), _session(cassette) as session:
        me = session.get_json(path, {"fields": fields})
    assert isinstance(me, dict)
    assert current_username(me) is None
    assert me.get("id") == user_id


def test_me_answer_keeps_display_name_and_authorities() -> None:
    cassette = "session/aggregate-data-entry_40_static_resources.yaml"
    with replay(cassette), _session(cassette) as session:
        me = session.get_json("40/me", {"fields": "authorities,avatar,email,name,settings"})
    assert isinstance(me, dict)
    assert me["name"] == "Tom Wakiki"
    assert isinstance(me["authorities"], list)
    assert "ALL" in me["authorities"]


# -- iter_pages --------------------------------------------------------------------------------

# cassette, path, fields, items key, page size, pages, total, first id, last id
COMPLETE_LISTS = [
    (
        "session/openhexa_2.41_api_get_paged.yaml",
        "organisationUnits",
        "id,name",
        "organisationUnits",
        1000,
        2,
        1332,
        "Rp268JB6Ne4",
        "BNFrspDBKel",
    ),
    (
        "session/openhexa_2.41_data_elements.yaml",
        "dataElements",
        "id,name,aggregationType,zeroIsSignificant",
        "dataElements",
        1000,
        2,
        1035,
        "FTRrcoaog83",
        "QN8WyI8KgpU",
    ),
    (
        "session/blsq-dhis2_2.28_programs.yaml",
        "programs",
        "id,displayName",
        "programs",
        50,
        1,
        17,
        "lxAQ7Zs9VYR",
        "WSGAb5XwJ3Y",
    ),
    (
        "session/blsq-iaso_2.32.3_orgunits_page1.yaml",
        "organisationUnits",
        None,
        "organisationUnits",
        50,
        1,
        2,
        "LOpWauwwghf",
        "kJq2mPyFEHo",
    ),
]


@pytest.mark.parametrize(
    ("cassette", "path", "fields", "key", "page_size", "pages", "total", "first", "last"),
    COMPLETE_LISTS,
    ids=[c[0].split("/")[1] for c in COMPLETE_LISTS],
)
def test_iter_pages_reads_every_recorded_page_and_stops_on_the_last(
    cassette: str,
    path: str,
    fields: str | None,
    key: str,
    page_size: int,
    pages: int,
    total: int,
    first: str,
    last: str,
) -> None:
    with replay(cassette) as recording, _session(cassette) as session:
        read = list(
            session.iter_pages(path, {"fields": fields}, items_key=key, page_size=page_size)
        )
        assert recording.all_played
        assert recording.play_count == pages  # no request after the last page
    items = [item for page in read for item in page.items]
    ids = [item["id"] for item in items if isinstance(item, dict)]
    assert [page.number for page in read] == list(range(1, pages + 1))
    assert len(ids) == len(items) == total
    assert read[0].body["pager"]["total"] == total  # type: ignore[index]
    assert len(set(ids)) == total
    assert (ids[0], ids[-1]) == (first, last)


# cassette, path, fields, items key, page size, items on page 1, pager total, first, last
FIRST_PAGES = [
    (
        "session/blsq-dhis2_2.28_organisation_units.yaml",
        "organisationUnits",
        None,
        "organisationUnits",
        50,
        1,
        1332,
        "Rp268JB6Ne4",
        "Rp268JB6Ne4",
    ),
    (
        "session/blsq-dhis2_2.28_data_elements.yaml",
        "dataElements",
        None,
        "dataElements",
        1,
        1,
        894,
        "FTRrcoaog83",
        "FTRrcoaog83",
    ),
    (
        "session/maintenance_2.41_data_elements_page1.yaml",
        "41/dataElements",
        "name,domainType,valueType,categoryCombo[id, displayName],lastUpdated,sharing[public],id,"
        "access",
        "dataElements",
        20,
        20,
        1273,
        "fbfJHSPpUQD",
        "eRwOwCpMzyP",
    ),
]


@pytest.mark.parametrize(
    ("cassette", "path", "fields", "key", "page_size", "count", "total", "first", "last"),
    FIRST_PAGES,
    ids=[c[0].split("/")[1] for c in FIRST_PAGES],
)
def test_iter_pages_yields_page_one_of_a_longer_list(
    cassette: str,
    path: str,
    fields: str | None,
    key: str,
    page_size: int,
    count: int,
    total: int,
    first: str,
    last: str,
) -> None:
    with replay(cassette) as recording, _session(cassette) as session:
        pages = session.iter_pages(path, {"fields": fields}, items_key=key, page_size=page_size)
        (page,) = itertools.islice(pages, 1)
        assert recording.all_played
    ids = [item["id"] for item in page.items if isinstance(item, dict)]
    assert page.number == 1
    assert len(ids) == count
    assert page.body["pager"]["total"] == total  # type: ignore[index]
    assert (ids[0], ids[-1]) == (first, last)


@pytest.mark.parametrize(
    ("cassette", "path", "key", "page_size"),
    [(c[0], c[1], c[3], c[4]) for c in FIRST_PAGES],
    ids=[c[0].split("/")[1] for c in FIRST_PAGES],
)
def test_iter_pages_asks_for_page_two_while_pager_has_next_page(
    cassette: str, path: str, key: str, page_size: int
) -> None:
    """The recordings end at page 1, so asking for page 2 is an unmatched request."""
    with replay(cassette), _session(cassette) as session:
        pages = session.iter_pages(path, items_key=key, page_size=page_size)
        next(pages)
        with pytest.raises(CannotOverwriteExistingCassetteException, match=r"page.+'2'"):
            next(pages)


def test_request_missing_from_cassette_fails_instead_of_reaching_network() -> None:
    cassette = "session/openhexa_2.41_dhis2_init.yaml"
    with (
        replay(cassette),
        _session(cassette) as session,
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        session.get_json("system/ping")


# -- dataValueSets GET (cassettes for a later reader) ------------------------------------------

DATA_VALUE_SETS = {
    "datavaluesets/blsq-dhis2_2.28_data_value_sets.yaml": [1],
    "datavaluesets/openhexa_2.36_get_start_end.yaml": [90],
    "datavaluesets/openhexa_2.37_get_start_end.yaml": [358, 249],
    "datavaluesets/openhexa_2.40_get_period.yaml": [132, 108, 226, 141],
    "datavaluesets/openhexa_2.41_get_dataset.yaml": [25, 30, 35],
}


def test_every_data_value_set_cassette_is_covered() -> None:
    assert sorted(DATA_VALUE_SETS) == cassette_names("datavaluesets")


@pytest.mark.parametrize("cassette", sorted(DATA_VALUE_SETS))
def test_data_value_set_cassettes_replay_through_plain_requests(cassette: str) -> None:
    recorded = recorded_bodies(cassette)
    counts = []
    with replay(cassette) as recording, requests.Session() as http:
        http.trust_env = False
        for uri, body in recorded:
            response = http.get(uri, timeout=5)
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "application/json"
            assert response.content == body
            counts.append(len(response.json()["dataValues"]))
        assert recording.all_played
    assert counts == DATA_VALUE_SETS[cassette]


# -- provenance --------------------------------------------------------------------------------

_ROW = re.compile(r"`(?P<commit>[0-9a-f]{40})` \| `[^`]+` \| `(?P<blob>[0-9a-f]{40})`")


@pytest.mark.parametrize("directory", ["session", "events", "datavaluesets"])
def test_every_cassette_names_its_source_commit_blob_and_licence(directory: str) -> None:
    source = (CASSETTES / directory / "SOURCE.md").read_text(encoding="utf-8")
    sections = source.split("\n## ")[1:]
    documented = sorted(s.split("`")[1] for s in sections)
    assert documented == sorted(n.split("/")[1] for n in cassette_names(directory))
    for section in sections:
        assert _ROW.search(section), section.splitlines()[0]
        for licence in re.findall(r"`(LICENSE\.[\w.-]+)`", section):
            assert (CASSETTES / directory / licence).is_file(), licence


@pytest.mark.parametrize("cassette", cassette_names("session") + cassette_names("events"))
def test_cassette_bodies_are_json_served_as_json(cassette: str) -> None:
    for _uri, body in recorded_bodies(cassette):
        json.loads(body)


def test_sockets_are_refused_while_a_cassette_plays() -> None:
    with (
        replay("session/openhexa_2.41_dhis2_init.yaml"),
        pytest.raises(OSError, match="network blocked"),
    ):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
