"""POST /api/tracker (sync, async, strategies, validation), legacy POST /api/events, metadata."""

from __future__ import annotations

import pytest

from dhis2_lmis.testing import DEMO, FakeDhis2, seed_demo

OU, PROGRAM, STAGE, QTY, NOTE = (
    "RootUnit001",
    "OrderProg01",
    "OrderStage1",
    "QtyAmox0001",
    "Note0000001",
)


def seed(fake: FakeDhis2) -> None:
    fake.add_org_unit(OU, "ROOT", "Country")
    fake.add_data_element(QTY, "AMOX250", "Amoxicillin", domain_type="TRACKER")
    fake.add_data_element(NOTE, "NOTE", "Note", value_type="TEXT", domain_type="TRACKER")
    fake.add_program(PROGRAM, "Order", stages={STAGE: (QTY, NOTE)}, org_units=(OU,))


def event(uid: str = "NewEvent001", **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event": uid,
        "program": PROGRAM,
        "programStage": STAGE,
        "orgUnit": OU,
        "occurredAt": "2024-05-02",
        "status": "COMPLETED",
        "dataValues": [{"dataElement": QTY, "value": "12"}, {"dataElement": NOTE, "value": "hi"}],
    }
    base.update(changes)
    return base


def post(fake: FakeDhis2, s, body, **params):
    return s.post(f"{fake.url}/api/tracker", params={"async": "false", **params}, json=body)


@pytest.mark.parametrize(
    ("version", "bundle_status", "index"),
    [("2.39", True, True), ("2.40", False, True), ("2.41", False, False)],
)
def test_sync_import_report_shape(fake_dhis2_factory, client, version, bundle_status, index):
    fake = fake_dhis2_factory(version)
    seed(fake)
    r = post(fake, client(fake), {"events": [event()]})
    report = r.json()
    assert r.status_code == 200
    assert report["status"] == "OK"
    assert report["stats"]["created"] == 1
    assert ("status" in report["bundleReport"]) is bundle_status
    obj = report["bundleReport"]["typeReportMap"]["EVENT"]["objectReports"][0]
    assert ("index" in obj) is index
    stored = fake.events["NewEvent001"]
    assert stored.created_at == stored.updated_at
    assert stored.data_values[QTY] == "12"


def test_unknown_org_unit_is_409_e1011_and_nothing_is_written(fake_dhis2, client):
    seed(fake_dhis2)
    r = post(
        fake_dhis2,
        client(fake_dhis2),
        {"events": [event(), event("Second00001", orgUnit="Nope0000001")]},
    )
    report = r.json()
    assert r.status_code == 409
    assert report["status"] == "ERROR"
    assert [e["errorCode"] for e in report["validationReport"]["errorReports"]] == ["E1011"]
    assert "bundleReport" not in report
    assert fake_dhis2.events == {}


def test_atomic_object_keeps_the_valid_events(fake_dhis2, client):
    seed(fake_dhis2)
    body = {"events": [event(), event("Second00001", orgUnit="Nope0000001")]}
    r = post(fake_dhis2, client(fake_dhis2), body, atomicMode="OBJECT")
    assert r.status_code == 409
    assert r.json()["stats"]["created"] == 1
    assert list(fake_dhis2.events) == ["NewEvent001"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"programStage": "NoStage0001"}, "E1013"),
        ({"dataValues": [{"dataElement": QTY, "value": "twelve"}]}, "E1302"),
        ({"dataValues": [{"dataElement": "NoDataElem1", "value": "1"}]}, "E1304"),
        ({"occurredAt": None}, "E1031"),
    ],
)
def test_event_validation_errors(fake_dhis2, client, changes, code):
    seed(fake_dhis2)
    report = post(fake_dhis2, client(fake_dhis2), {"events": [event(**changes)]}).json()
    assert code in [e["errorCode"] for e in report["validationReport"]["errorReports"]]


def test_create_existing_and_update_missing(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    post(fake_dhis2, s, {"events": [event()]})
    again = post(fake_dhis2, s, {"events": [event()]}, importStrategy="CREATE").json()
    assert again["validationReport"]["errorReports"][0]["errorCode"] == "E1030"
    missing = post(fake_dhis2, s, {"events": [event("Missing0001")]}, importStrategy="UPDATE")
    assert missing.json()["validationReport"]["errorReports"][0]["errorCode"] == "E1032"


def test_update_merges_data_values(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    post(fake_dhis2, s, {"events": [event()]})
    post(fake_dhis2, s, {"events": [event(dataValues=[{"dataElement": QTY, "value": "20"}])]})
    stored = fake_dhis2.events["NewEvent001"]
    assert stored.data_values == {QTY: "20", NOTE: "hi"}
    assert stored.updated_at > stored.created_at


def test_async_job_notifications_and_report(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    r = s.post(f"{fake_dhis2.url}/api/tracker", json={"events": [event()]})
    body = r.json()
    assert body["message"] == "Tracker job added"
    assert r.headers["Location"]
    notes = s.get(body["response"]["location"]).json()
    assert notes[0]["completed"] is True
    report = s.get(body["response"]["location"] + "/report").json()
    assert report["stats"]["created"] == 1


@pytest.mark.parametrize(("version", "sync"), [("2.41", False), ("2.42", True)])
def test_async_capital_false(fake_dhis2_factory, client, version, sync):
    fake = fake_dhis2_factory(version)
    seed(fake)
    r = client(fake).post(f"{fake.url}/api/tracker?async=False", json={"events": [event()]})
    assert ("message" not in r.json()) is sync
    assert "NewEvent001" in fake.events


def test_tracker_program_event_needs_an_enrollment(fake_dhis2, client):
    seed(fake_dhis2)
    fake_dhis2.add_program(
        "StrProgram1", "STR", program_type="WITH_REGISTRATION", stages={"StrStage001": (QTY,)}
    )
    fake_dhis2.add_tracked_entity("TrackEnt001", OU, "StrProgram1", enrollment_uid="Enrolment01")
    s = client(fake_dhis2)
    body = {
        "events": [
            event(
                program="StrProgram1",
                programStage="StrStage001",
                dataValues=[{"dataElement": QTY, "value": "5"}],
            )
        ]
    }
    assert (
        post(fake_dhis2, s, body).json()["validationReport"]["errorReports"][0]["errorCode"]
        == "E1033"
    )
    body["events"][0]["enrollment"] = "Enrolment01"
    assert post(fake_dhis2, s, body).status_code == 200
    assert fake_dhis2.events["NewEvent001"].tracked_entity == "TrackEnt001"


@pytest.mark.dhis2_version("2.40")
def test_legacy_post_events_uses_strategy(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    legacy = {
        "event": "LegacyEvnt1",
        "program": PROGRAM,
        "programStage": STAGE,
        "orgUnit": OU,
        "eventDate": "2024-05-02",
        "status": "COMPLETED",
        "dataValues": [{"dataElement": QTY, "value": "3"}],
    }
    ok = s.post(f"{fake_dhis2.url}/api/events", json={"events": [legacy]})
    assert ok.status_code == 200
    assert ok.json()["response"]["imported"] == 1
    dup = s.post(f"{fake_dhis2.url}/api/events?strategy=CREATE&importStrategy=UPDATE", json=legacy)
    assert dup.status_code == 409
    assert dup.json()["response"]["importSummaries"][0]["status"] == "ERROR"


def test_metadata_fields_filter_and_paging(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    url = f"{fake_dhis2.url}/api/dataElements"
    body = s.get(
        url,
        params={
            "filter": ["code:in:[AMOX250,NOTE]", "valueType:eq:TEXT"],
            "fields": "id,code,categoryCombo[id,categoryOptionCombos[id,code]]",
        },
    ).json()
    assert body["dataElements"] == [
        {
            "id": NOTE,
            "code": "NOTE",
            "categoryCombo": {
                "id": "bjDvmb4bfuf",
                "categoryOptionCombos": [{"id": "HllvX50cXC0", "code": "default"}],
            },
        }
    ]
    paged = s.get(url, params={"pageSize": 1, "order": "code:asc"}).json()
    assert paged["pager"]["total"] == 2
    assert "nextPage" in paged["pager"]
    assert paged["dataElements"] == [{"id": QTY, "displayName": "Amoxicillin"}]
    assert s.get(f"{url}/NoSuchElem1").status_code == 404


def test_demo_world_is_consistent(fake_dhis2_factory, client):
    fake = fake_dhis2_factory("2.41")
    seed_demo(fake)
    s = client(fake)
    program = s.get(
        f"{fake.url}/api/programs/{DEMO.order_program}", params={"fields": "programStages[id]"}
    ).json()
    assert program == {"programStages": [{"id": DEMO.order_stage}]}
    events = s.get(
        f"{fake.url}/api/tracker/events",
        params={"program": DEMO.order_program, "status": "COMPLETED"},
    ).json()["events"]
    assert len(events) == 6
    tes = s.get(
        f"{fake.url}/api/tracker/trackedEntities",
        params={"program": DEMO.str_program, "filter": f"{DEMO.item_code_attribute}:eq:AMOX250"},
    ).json()
    assert len(tes["trackedEntities"]) == 3
