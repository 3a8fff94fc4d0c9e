"""Fault injection: each kind fires for ``times`` matching requests, then normal answers resume."""

from __future__ import annotations

import pytest
import requests


def test_status_fault_with_retry_after_then_recovers(fake_dhis2, client):
    fake_dhis2.inject("GET", "/api/system/info", status=429, retry_after=7, times=2)
    s = client(fake_dhis2)
    url = f"{fake_dhis2.url}/api/system/info"
    first, second, third = s.get(url), s.get(url), s.get(url)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 429
    assert third.status_code == 200


def test_proxy_status_fault_is_an_html_page(fake_dhis2, client):
    fake_dhis2.inject("*", "/api/*", status=503)
    r = client(fake_dhis2).post(f"{fake_dhis2.url}/api/tracker", json={})
    assert r.status_code == 503
    assert r.headers["Content-Type"].startswith("text/html")


def test_status_fault_with_custom_body(fake_dhis2, client):
    fake_dhis2.inject("GET", "/api/me", status=502, body="<html>bad gateway</html>")
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/me")
    assert r.text == "<html>bad gateway</html>"


def test_drop_closes_without_answering_and_without_acting(fake_dhis2, client):
    fake_dhis2.inject("POST", "/api/tracker", fault="drop")
    payload = {"events": [{"event": "DroppedEvt1"}]}
    with pytest.raises(requests.ConnectionError):
        client(fake_dhis2).post(f"{fake_dhis2.url}/api/tracker?async=false", json=payload)
    assert fake_dhis2.requests[-1].status is None
    assert fake_dhis2.events == {}


def test_drop_after_performs_the_write_then_closes(fake_dhis2, client):
    fake_dhis2.add_org_unit("RootUnit001", "ROOT", "Country")
    fake_dhis2.add_data_element("QtyAmox0001", "AMOX250", "Amoxicillin")
    fake_dhis2.add_program("OrderProg01", "Order", stages={"OrderStage1": ("QtyAmox0001",)})
    fake_dhis2.inject("POST", "/api/tracker", fault="drop_after")
    event = {
        "event": "WrittenEvt1",
        "program": "OrderProg01",
        "programStage": "OrderStage1",
        "orgUnit": "RootUnit001",
        "occurredAt": "2024-05-02",
        "status": "COMPLETED",
        "dataValues": [{"dataElement": "QtyAmox0001", "value": "5"}],
    }
    with pytest.raises(requests.ConnectionError):
        client(fake_dhis2).post(
            f"{fake_dhis2.url}/api/tracker?async=false", json={"events": [event]}
        )
    assert fake_dhis2.events["WrittenEvt1"].data_values == {"QtyAmox0001": "5"}


def test_delay_makes_a_short_read_timeout_fire(fake_dhis2, client):
    fake_dhis2.inject("GET", "/api/system/ping", fault="delay", seconds=0.3)
    s = client(fake_dhis2)
    with pytest.raises(requests.ReadTimeout):
        s.get(f"{fake_dhis2.url}/api/system/ping", timeout=0.05)
    assert s.get(f"{fake_dhis2.url}/api/system/ping", timeout=5).text == "pong"


def test_html_login_fault_answers_200_html(fake_dhis2, client):
    fake_dhis2.inject("GET", "/api/tracker/events", fault="html_login")
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/tracker/events")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("kind", ["malformed_json", "truncated_json"])
def test_broken_json_faults(fake_dhis2, client, kind):
    fake_dhis2.inject("GET", "/api/system/info", fault=kind)
    r = client(fake_dhis2).get(f"{fake_dhis2.url}/api/system/info")
    assert r.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        r.json()


def test_method_must_match_unless_star(fake_dhis2, client):
    fake_dhis2.inject("POST", "/api/system/info", status=500)
    assert client(fake_dhis2).get(f"{fake_dhis2.url}/api/system/info").status_code == 200


def test_request_log_records_query_headers_body_and_status(fake_dhis2, client):
    s = client(fake_dhis2)
    s.post(f"{fake_dhis2.url}/api/dataValueSets?dryRun=true", json={"dataValues": []})
    last = fake_dhis2.requests[-1]
    assert (last.method, last.path, last.query, last.status) == (
        "POST",
        "/api/dataValueSets",
        {"dryRun": ["true"]},
        200,
    )
    assert last.headers["X-Requested-With"] == "XMLHttpRequest"
    assert last.json() == {"dataValues": []}
    fake_dhis2.clear_requests()
    assert fake_dhis2.requests == []
