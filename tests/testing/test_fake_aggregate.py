"""POST/GET /api/dataValueSets in the shapes of each version."""

from __future__ import annotations

import pytest

from dhis2_lmis.testing import FakeDhis2

FAC, DS, SOH1, SOH2, ZERO_DE = (
    "FacUnitA001",
    "StockDSet01",
    "SohAmox0001",
    "SohPara0001",
    "ZeroDe00001",
)


def seed(fake: FakeDhis2) -> None:
    fake.add_org_unit(FAC, "FAC_A", "Facility A")
    fake.add_data_element(SOH1, "SOH_AMOX250", "Amox SOH", zero_is_significant=True)
    fake.add_data_element(SOH2, "SOH_PARA500", "Para SOH", zero_is_significant=True)
    fake.add_data_element(ZERO_DE, "ZERO", "Insignificant zeros")
    fake.add_data_set(DS, "STOCK", "Stock", data_elements=(SOH1, SOH2, ZERO_DE), org_units=(FAC,))


def payload(*extra: dict[str, str]) -> dict[str, object]:
    return {
        "dataSet": DS,
        "period": "202404",
        "orgUnit": FAC,
        "dataValues": [
            {"dataElement": SOH1, "value": "340"},
            {"dataElement": "XXXXXXXXXXX", "value": "1"},
            {"dataElement": SOH2, "value": "12"},
            *extra,
        ],
    }


@pytest.mark.parametrize("version", ["2.36", "2.37", "2.40", "2.42"])
def test_one_unknown_data_element(fake_dhis2_factory, client, version):
    fake = fake_dhis2_factory(version)
    seed(fake)
    r = client(fake).post(f"{fake.url}/api/dataValueSets", json=payload())
    body = r.json()
    if version in ("2.36", "2.37"):
        assert r.status_code == 200
        summary = body
    else:
        assert r.status_code == 409
        assert (body["httpStatus"], body["status"]) == ("Conflict", "WARNING")
        summary = body["response"]
    assert summary["status"] == "WARNING"
    assert summary["importCount"] == {"imported": 2, "updated": 0, "ignored": 1, "deleted": 0}
    (conflict,) = summary["conflicts"]
    assert conflict["object"] == "XXXXXXXXXXX"
    if version == "2.36":
        assert set(conflict) == {"object", "value"}
    else:
        assert conflict["errorCode"] == "E7610"
        assert conflict["indexes"] == [1]
    assert ("rejectedIndexes" in summary) is (version == "2.42")
    assert len(fake.data_values) == 2


def test_success_is_200_web_message_on_new_versions(fake_dhis2, client):
    seed(fake_dhis2)
    body = {
        "dataSet": DS,
        "period": "202404",
        "orgUnit": FAC,
        "dataValues": [{"dataElement": SOH1, "value": "1"}],
    }
    r = client(fake_dhis2).post(f"{fake_dhis2.url}/api/dataValueSets", json=body)
    assert r.status_code == 200
    assert r.json()["message"] == "Import was successful."


def test_unknown_data_set_aborts(fake_dhis2, client):
    seed(fake_dhis2)
    r = client(fake_dhis2).post(
        f"{fake_dhis2.url}/api/dataValueSets", json={**payload(), "dataSet": "NoSuchDSet1"}
    )
    summary = r.json()["response"]
    assert r.status_code == 409
    assert summary["status"] == "ERROR"
    assert summary["description"] == "Import process was aborted"
    assert fake_dhis2.data_values == []


@pytest.mark.parametrize(
    ("version", "second"), [("2.40", "updated"), ("2.40.3", "ignored"), ("2.41", "ignored")]
)
def test_unchanged_values_counted_per_version(fake_dhis2_factory, client, version, second):
    fake = fake_dhis2_factory(version)
    seed(fake)
    body = {
        "dataSet": DS,
        "period": "202404",
        "orgUnit": FAC,
        "dataValues": [{"dataElement": SOH1, "value": "1"}],
    }
    s = client(fake)
    s.post(f"{fake.url}/api/dataValueSets", json=body)
    counts = s.post(f"{fake.url}/api/dataValueSets", json=body).json()["response"]["importCount"]
    assert counts[second] == 1


def test_non_numeric_and_insignificant_zero(fake_dhis2, client):
    seed(fake_dhis2)
    body = {
        "period": "202404",
        "orgUnit": FAC,
        "dataValues": [
            {"dataElement": SOH1, "value": "lots"},
            {"dataElement": ZERO_DE, "value": "0"},
        ],
    }
    summary = client(fake_dhis2).post(f"{fake_dhis2.url}/api/dataValueSets", json=body).json()
    summary = summary["response"]
    assert [c["errorCode"] for c in summary["conflicts"]] == ["E7619"]
    assert summary["importCount"]["ignored"] == 2
    assert fake_dhis2.data_values == []


def test_strict_periods_rejects_a_period_of_the_wrong_type(fake_dhis2, client):
    seed(fake_dhis2)
    body = {
        "orgUnit": FAC,
        "dataValues": [{"dataElement": SOH1, "period": "2024W10", "value": "1"}],
    }
    url = f"{fake_dhis2.url}/api/dataValueSets?strictPeriods=true"
    summary = client(fake_dhis2).post(url, json=body).json()["response"]
    assert summary["conflicts"][0]["errorCode"] == "E7632"


def test_strict_periods_rejects_a_data_element_no_data_set_holds(fake_dhis2, client):
    # DHIS2 takes a data element's period types from its data sets: none, so no period fits
    seed(fake_dhis2)
    fake_dhis2.add_data_element("LooseDe0001", "LOOSE", "In no data set")
    body = {
        "period": "202404",
        "orgUnit": FAC,
        "dataValues": [{"dataElement": "LooseDe0001", "value": "1"}],
    }
    url = f"{fake_dhis2.url}/api/dataValueSets?strictPeriods=true"
    summary = client(fake_dhis2).post(url, json=body).json()["response"]
    assert [c["errorCode"] for c in summary["conflicts"]] == ["E7632"]
    assert fake_dhis2.data_values == []


def test_code_id_scheme_and_dry_run(fake_dhis2, client):
    seed(fake_dhis2)
    body = {
        "period": "202404",
        "orgUnit": "FAC_A",
        "dataValues": [{"dataElement": "SOH_AMOX250", "value": "3"}],
    }
    url = f"{fake_dhis2.url}/api/dataValueSets"
    s = client(fake_dhis2)
    dry = s.post(url, params={"idScheme": "CODE", "dryRun": "true"}, json=body).json()
    assert dry["response"]["importCount"]["imported"] == 1
    assert fake_dhis2.data_values == []
    s.post(url, params={"dataElementIdScheme": "CODE", "orgUnitIdScheme": "CODE"}, json=body)
    assert [(v.data_element, v.value) for v in fake_dhis2.data_values] == [(SOH1, "3")]


@pytest.mark.dhis2_version("2.40")
def test_api_37_keeps_the_bare_summary(fake_dhis2, client):
    seed(fake_dhis2)
    r = client(fake_dhis2).post(f"{fake_dhis2.url}/api/37/dataValueSets", json=payload())
    assert r.status_code == 200
    assert r.json()["responseType"] == "ImportSummary"


def test_async_import_job_and_task_summary(fake_dhis2, client):
    seed(fake_dhis2)
    s = client(fake_dhis2)
    job = s.post(f"{fake_dhis2.url}/api/dataValueSets?async=true", json=payload()).json()
    assert job["message"] == "Initiated dataValueImport"
    endpoint = job["response"]["relativeNotifierEndpoint"]
    assert s.get(f"{fake_dhis2.url}{endpoint}").json()[0]["completed"] is True
    summary = s.get(
        f"{fake_dhis2.url}/api/system/taskSummaries/DATAVALUE_IMPORT/{job['response']['id']}"
    ).json()
    assert summary["importCount"]["imported"] == 2


def test_get_single_org_unit_and_period_has_top_level_keys(fake_dhis2, client):
    seed(fake_dhis2)
    fake_dhis2.add_data_value(SOH1, "202404", FAC, 340)
    params = {"dataSet": DS, "period": "202404", "orgUnit": FAC, "dataElementIdScheme": "CODE"}
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/dataValueSets", params=params).json()
    assert (body["dataSet"], body["period"], body["orgUnit"]) == (DS, "202404", FAC)
    assert body["dataValues"][0]["dataElement"] == "SOH_AMOX250"
    assert body["dataValues"][0]["value"] == "340"


def test_get_with_date_range_has_only_data_values(fake_dhis2, client):
    seed(fake_dhis2)
    fake_dhis2.add_data_value(SOH1, "202404", FAC, 1)
    fake_dhis2.add_data_value(SOH1, "202406", FAC, 2)
    params = {"dataSet": DS, "startDate": "2024-01-01", "endDate": "2024-04-30", "orgUnit": FAC}
    body = client(fake_dhis2).get(f"{fake_dhis2.url}/api/dataValueSets", params=params).json()
    assert list(body) == ["dataValues"]
    assert [v["value"] for v in body["dataValues"]] == ["1"]


def test_get_without_period_is_409(fake_dhis2, client):
    seed(fake_dhis2)
    r = client(fake_dhis2).get(
        f"{fake_dhis2.url}/api/dataValueSets", params={"dataSet": DS, "orgUnit": FAC}
    )
    assert r.status_code == 409
    assert r.json()["status"] == "ERROR"
