"""GET /api/tracker/events and legacy /api/events: envelopes, paging, org unit modes per version."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from dhis2_lmis.testing import FakeDhis2, Latency

ROOT, DISTRICT, FAC_A, FAC_B = "RootUnit001", "DistUnit001", "FacUnitA001", "FacUnitB001"
PROGRAM, STAGE, QTY = "OrderProg01", "OrderStage1", "QtyAmox0001"
START = dt.datetime(2024, 5, 1, 8, 0)


def seed(fake: FakeDhis2, total: int = 5) -> list[str]:
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(DISTRICT, "DIST", "District", parent=ROOT)
    fake.add_org_unit(FAC_A, "FAC_A", "Facility A", parent=DISTRICT)
    fake.add_org_unit(FAC_B, "FAC_B", "Facility B", parent=DISTRICT)
    fake.add_data_element(QTY, "AMOX250", "Amoxicillin", domain_type="TRACKER")
    fake.add_program(PROGRAM, "Order program", stages={STAGE: (QTY,)}, org_units=(FAC_A, FAC_B))
    uids = []
    for n in range(total):
        stamp = START + dt.timedelta(minutes=n)
        uid = f"Event{n:06d}"
        fake.add_event(
            uid,
            PROGRAM,
            FAC_A if n % 2 == 0 else FAC_B,
            data_values={QTY: n * 10},
            occurred_at=stamp,
            updated_at=stamp,
        )
        uids.append(uid)
    return uids


@pytest.mark.dhis2_version("2.38")
def test_238_envelope_is_instances_with_flat_pager(fake_dhis2, client):
    seed(fake_dhis2)
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events").json()
    assert set(body) == {"instances", "page", "pageSize"}
    assert body["page"] == 1
    assert body["pageSize"] == 50
    assert len(body["instances"]) == 5


@pytest.mark.dhis2_version("2.38")
def test_238_total_pages_adds_total_and_page_count(fake_dhis2, client):
    seed(fake_dhis2)
    url = f"{fake_dhis2.url}/api/tracker/events"
    body = client(fake_dhis2).get(url, params={"totalPages": "true", "pageSize": 2}).json()
    assert body["total"] == 5
    assert body["pageCount"] == 3


@pytest.mark.dhis2_version("2.41")
def test_241_envelope_has_pager_and_deprecated_flat_fields(fake_dhis2, client):
    seed(fake_dhis2)
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events").json()
    assert list(body) == ["pager", "page", "pageSize", "events"]
    assert body["pager"] == {"page": 1, "pageSize": 50}


@pytest.mark.dhis2_version("2.42")
def test_242_envelope_has_next_page_link_only_when_more(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    url = f"{fake_dhis2.url}/api/tracker/events"
    first = s.get(url, params={"pageSize": 2}).json()
    assert set(first) == {"pager", "events"}
    assert first["pager"]["nextPage"].startswith(f"{fake_dhis2.url}/api/tracker/events?")
    assert "page=2" in first["pager"]["nextPage"]
    last = s.get(url, params={"pageSize": 2, "page": 3}).json()
    assert "nextPage" not in last["pager"]
    assert "prevPage" in last["pager"]
    assert len(last["events"]) == 1


@pytest.mark.parametrize("version", ["2.36", "2.41"])
def test_short_page_is_the_stop_signal_before_242(fake_dhis2_factory, client, version):
    fake = fake_dhis2_factory(version)
    seed(fake)
    s = client(fake)
    key = "instances" if version == "2.36" else "events"
    pages = [
        s.get(f"{fake.url}/api/tracker/events", params={"pageSize": 2, "page": p}).json()[key]
        for p in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages] == [2, 2, 1, 0]


def test_default_order_is_newest_first(fake_dhis2, client):
    uids = seed(fake_dhis2)
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events").json()
    assert [e["event"] for e in body["events"]] == list(reversed(uids))


@pytest.mark.parametrize(
    ("version", "order", "oldest_first"),
    [
        ("2.36", "lastUpdated:asc", True),
        ("2.36", "updatedAt:asc", False),
        ("2.40", "updatedAt:asc", True),
    ],
)
def test_order_names_per_version(fake_dhis2_factory, client, version, order, oldest_first):
    fake = fake_dhis2_factory(version)
    uids = seed(fake)
    body = client(fake).get(f"{fake.url}/api/tracker/events", params={"order": order}).json()
    got = [e["event"] for e in body["instances"]]
    assert got == (uids if oldest_first else list(reversed(uids)))


@pytest.mark.parametrize(
    ("version", "params", "expected"),
    [
        ("2.40", {"ouMode": "DESCENDANTS"}, 5),
        ("2.40", {"orgUnitMode": "DESCENDANTS"}, 0),  # unknown param ignored -> SELECTED
        ("2.41", {"orgUnitMode": "DESCENDANTS"}, 5),
        ("2.41", {"ouMode": "DESCENDANTS"}, 5),
        ("2.42", {"ouMode": "DESCENDANTS"}, 0),  # silently ignored -> SELECTED
        ("2.42", {"orgUnitMode": "DESCENDANTS"}, 5),
        ("2.42", {"orgUnitMode": "CHILDREN"}, 0),
    ],
)
def test_org_unit_mode_param_per_version(fake_dhis2_factory, client, version, params, expected):
    fake = fake_dhis2_factory(version)
    seed(fake)
    url = f"{fake.url}/api/tracker/events"
    body = client(fake).get(url, params={"orgUnit": ROOT, **params}).json()
    assert len(body.get("instances", body.get("events", []))) == expected


@pytest.mark.dhis2_version("2.41")
def test_241_rejects_ou_mode_and_org_unit_mode_together(fake_dhis2, client):
    seed(fake_dhis2)
    params = {"orgUnit": ROOT, "ouMode": "DESCENDANTS", "orgUnitMode": "DESCENDANTS"}
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events", params=params)
    assert r.status_code == 400
    assert r.json()["httpStatusCode"] == 400


def test_without_org_unit_reads_the_users_accessible_tree(fake_dhis2, client):
    seed(fake_dhis2)
    fake_dhis2.add_user("fac_a", "pw", org_units=(FAC_A,))
    body = client(fake_dhis2, auth=("fac_a", "pw")).get(f"{fake_dhis2.url}/api/tracker/events")
    assert {e["orgUnit"] for e in body.json()["events"]} == {FAC_A}


@pytest.mark.parametrize(
    ("version", "params", "expected"),
    [
        ("2.40", {"paging": "false"}, 50),  # ignored: page 1 of 50
        ("2.40", {"skipPaging": "true"}, 60),
        ("2.41", {"paging": "false"}, 60),
        ("2.41", {"skipPaging": "true"}, 60),
        ("2.42", {"skipPaging": "true"}, 50),  # ignored: page 1 of 50
        ("2.42", {"paging": "false"}, 60),
    ],
)
def test_paging_switch_per_version(fake_dhis2_factory, client, version, params, expected):
    fake = fake_dhis2_factory(version)
    seed(fake, 60)
    body = client(fake).get(f"{fake.url}/api/tracker/events", params=params).json()
    items = body.get("instances", body.get("events"))
    assert len(items) == expected


@pytest.mark.dhis2_version("2.41")
def test_241_rejects_paging_false_with_page_size(fake_dhis2, client):
    params = {"paging": "false", "pageSize": "10"}
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events", params=params)
    assert r.status_code == 400


def test_updated_after_and_date_only_upper_bound(fake_dhis2, client):
    seed(fake_dhis2)
    url = f"{fake_dhis2.url}/api/tracker/events"
    s = client(fake_dhis2)
    after = s.get(url, params={"updatedAfter": "2024-05-01T08:02:00.000"}).json()["events"]
    assert len(after) == 3
    same_day = s.get(url, params={"occurredBefore": "2024-05-01"}).json()["events"]
    assert len(same_day) == 5  # 2.39+: a date-only upper bound means the end of that day


@pytest.mark.dhis2_version("2.38")
def test_238_date_only_upper_bound_is_midnight(fake_dhis2, client):
    seed(fake_dhis2)
    url = f"{fake_dhis2.url}/api/tracker/events"
    body = client(fake_dhis2).get(url, params={"occurredBefore": "2024-05-01"}).json()
    assert body["instances"] == []


@pytest.mark.parametrize(
    ("version", "absent", "present"),
    [
        ("2.38", {"followUp"}, {"followup", "orgUnitName"}),
        ("2.41", {"orgUnitName"}, {"followup", "followUp"}),
        ("2.42", {"followup", "orgUnitName"}, {"followUp"}),
    ],
)
def test_event_field_names_per_version(fake_dhis2_factory, client, version, absent, present):
    fake = fake_dhis2_factory(version)
    seed(fake, 1)
    r = client(fake).get(f"{fake.url}/api/tracker/events/Event000000")
    event = r.json()
    assert present <= set(event)
    assert not absent & set(event)
    assert event["dataValues"][0]["value"] == "0"
    assert event["updatedAt"] == "2024-05-01T08:00:00.000"


def test_fields_and_data_element_code_scheme(fake_dhis2, client):
    seed(fake_dhis2, 1)
    params = {"fields": "event,dataValues[dataElement,value]", "dataElementIdScheme": "CODE"}
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events", params=params).json()
    assert body["events"] == [
        {"event": "Event000000", "dataValues": [{"dataElement": "AMOX250", "value": "0"}]}
    ]


def test_touch_event_moves_it_after_the_cursor(fake_dhis2, client):
    seed(fake_dhis2)
    fake_dhis2.now = dt.datetime(2024, 6, 1, 9, 0)
    fake_dhis2.touch_event("Event000001", data_values={QTY: "99"})
    params = {"updatedAfter": "2024-05-02", "order": "updatedAt:asc"}
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events", params=params).json()
    assert [(e["event"], e["updatedAt"]) for e in body["events"]] == [
        ("Event000001", "2024-06-01T09:00:00.000")
    ]


def test_deleted_events_only_with_include_deleted(fake_dhis2, client):
    seed(fake_dhis2, 2)
    fake_dhis2.delete_event("Event000000")
    url = f"{fake_dhis2.url}/api/tracker/events"
    s = client(fake_dhis2)
    assert len(s.get(url).json()["events"]) == 1
    assert len(s.get(url, params={"includeDeleted": "true"}).json()["events"]) == 2


def test_unknown_event_is_404_web_message(fake_dhis2, client):
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events/NoSuchEvnt1")
    assert r.status_code == 404
    assert r.json()["httpStatus"] == "Not Found"


@pytest.mark.dhis2_version("2.40")
def test_legacy_events_envelope_and_names(fake_dhis2, client):
    seed(fake_dhis2)
    params = {"pageSize": 2, "fields": "*", "lastUpdatedStartDate": "2024-05-01T08:01:00"}
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/events", params=params).json()
    assert body["pager"] == {"page": 1, "pageSize": 2, "isLastPage": False}
    assert {"eventDate", "lastUpdated", "dueDate"} <= set(body["events"][0])


@pytest.mark.dhis2_version("2.42")
def test_legacy_events_are_gone_on_242(fake_dhis2, client):
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/events")
    assert r.status_code == 404


@pytest.mark.parametrize(("version", "key"), [("2.40", "instances"), ("2.41", "trackedEntities")])
def test_tracked_entities_filter_by_attribute(fake_dhis2_factory, client, version, key):
    fake = fake_dhis2_factory(version)
    seed(fake, 0)
    fake.add_tracked_entity_attribute("ItemCodeAtt", "ITEM_CODE", "Item code")
    fake.add_program(
        "StrProgram1",
        "STR",
        program_type="WITH_REGISTRATION",
        stages={"StrStage001": ()},
        attributes=("ItemCodeAtt",),
    )
    for n, code in enumerate(("AMOX250", "PARA500", "ORS200")):
        fake.add_tracked_entity(
            f"TrackEnt00{n}", FAC_A, "StrProgram1", attributes={"ItemCodeAtt": code}
        )
    params = {
        "program": "StrProgram1",
        "filter": "ItemCodeAtt:in:AMOX250;ORS200",
        "fields": "trackedEntity,attributes[attribute,value],enrollments[enrollment,status]",
        "orgUnits" if version == "2.41" else "orgUnit": FAC_A,
    }
    body = client(fake).get(f"{fake.url}/api/tracker/trackedEntities", params=params).json()
    assert sorted(t["trackedEntity"] for t in body[key]) == ["TrackEnt000", "TrackEnt002"]
    assert body[key][0]["enrollments"][0]["status"] == "ACTIVE"


@pytest.mark.dhis2_version("2.41")
def test_a_page_served_again_shows_every_change_since(fake_dhis2, client):
    """Event JSON is cached between writes: an edit, a new code or a new user name shows at once."""
    seed(fake_dhis2, 3)
    s = client(fake_dhis2)
    url = f"{fake_dhis2.url}/api/tracker/events"
    params = {"program": PROGRAM, "order": "updatedAt:asc", "dataElementIdScheme": "CODE"}

    def page() -> dict[str, dict]:
        return {e["event"]: e for e in s.get(url, params=params).json()["events"]}

    assert page() == page()
    fake_dhis2.touch_event("Event000001", data_values={QTY: 99})
    assert page()["Event000001"]["dataValues"][0]["value"] == "99"
    fake_dhis2.add_data_element(QTY, "AMOX500", "Amoxicillin", domain_type="TRACKER")
    assert {e["dataValues"][0]["dataElement"] for e in page().values()} == {"AMOX500"}
    fake_dhis2.add_user("admin", "district", org_units=(ROOT,), uid="M5zQapPyTZI", first_name="Awa")
    assert {e["createdBy"]["firstName"] for e in page().values()} == {"Awa"}


@pytest.mark.parametrize(("version", "path"), [("2.41", "tracker/events"), ("2.40", "events")])
def test_latency_holds_event_pages_and_serves_them_concurrently(
    fake_dhis2_factory, client, version, path
):
    fake = fake_dhis2_factory(version)
    seed(fake, 40)
    fake.latency = Latency(per_request=0.5, per_item=0.005)  # 0.5 s + 20 events: 0.6 s
    s = client(fake)
    url = f"{fake.url}/api/{path}"
    started = time.monotonic()
    assert s.get(url, params={"program": PROGRAM, "pageSize": 20}).status_code == 200
    one = time.monotonic() - started
    started = time.monotonic()
    s.get(f"{fake.url}/api/system/info")
    other = time.monotonic() - started
    with ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        pages = list(pool.map(lambda n: requests.get(
            url, params={"program": PROGRAM, "page": n, "pageSize": 10}, auth=("admin", "district")
        ).status_code, [1, 2, 3, 4]))  # fmt: skip
        together = time.monotonic() - started
    assert pages == [200] * 4
    assert 0.6 <= one < 2.0
    assert other < 0.5  # only pages of records wait
    assert 0.55 <= together < 1.6  # four pages of 0.55 s in flight at once, not 2.2 s in a row
