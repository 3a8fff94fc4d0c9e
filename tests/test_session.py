"""Dhis2Session against the offline DHIS2: headers, retries, error mapping, paging."""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import socket
from collections.abc import Sequence

import pytest

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.retry import RetryPolicy
from dhis2_lmis.dhis2.session import Dhis2Session, ParamValue
from dhis2_lmis.errors import (
    AuthenticationError,
    Dhis2ConnectionError,
    Dhis2DisabledError,
    Dhis2TimeoutError,
    NotFoundError,
    RequestRejectedError,
    ResponseFormatError,
    ServerError,
)
from dhis2_lmis.testing import FakeDhis2

PASSWORD = "district"


class SleepRecorder:
    """Stands in for time.sleep so retries never really wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake() -> FakeDhis2:
    with FakeDhis2(version="2.41") as server:
        yield server


@pytest.fixture
def sleep() -> SleepRecorder:
    return SleepRecorder()


def make_session(fake: FakeDhis2, sleep: SleepRecorder, **options: object) -> Dhis2Session:
    return Dhis2Session(
        fake.url,
        BasicAuth("admin", PASSWORD),
        sleep=sleep,
        rng=random.Random(7),
        **options,  # type: ignore[arg-type]
    )


def test_every_request_identifies_as_an_api_client(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    make_session(fake, sleep).get_json("system/info")
    headers = {k.lower(): v for k, v in fake.requests[-1].headers.items()}
    assert headers["x-requested-with"] == "XMLHttpRequest"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("dhis2-lmis/")


def test_trailing_api_in_the_url_is_accepted(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    session = Dhis2Session(fake.url + "/api/", BasicAuth("admin", PASSWORD), sleep=sleep)
    assert session.version == (2, 41)
    assert fake.requests[-1].path == "/api/system/info"


def test_version_and_time_zone_come_from_system_info(sleep: SleepRecorder) -> None:
    with FakeDhis2(version="2.39", time_zone="Africa/Nairobi") as fake:
        session = make_session(fake, sleep)
        assert session.version == (2, 39, 0)
        assert session.time_zone is not None
        assert session.server_info["serverTimeZoneId"] == "Africa/Nairobi"
        session.version  # noqa: B018 - second access is served from the cache
        assert len(fake.requests) == 1


def test_503_twice_then_success_is_survived(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", status=503, times=2)
    body = make_session(fake, sleep).get_json("me")
    assert isinstance(body, dict) and body["username"] == "admin"
    assert len(sleep.calls) == 2


def test_429_waits_for_retry_after(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", status=429, retry_after=7)
    make_session(fake, sleep).get_json("me")
    assert sleep.calls == [7.0]


def test_retry_after_is_capped(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", status=429, retry_after=3600)
    make_session(fake, sleep, retry=RetryPolicy(cap_s=5.0)).get_json("me")
    assert sleep.calls == [5.0]


def test_persistent_503_gives_up_after_bounded_attempts(
    fake: FakeDhis2, sleep: SleepRecorder
) -> None:
    fake.inject("GET", "/api/me", status=503, times=50)
    session = make_session(fake, sleep, retry=RetryPolicy(attempts=3))
    with pytest.raises(ServerError) as raised:
        session.get_json("me")
    assert raised.value.status == 503
    assert len([r for r in fake.requests if r.path == "/api/me"]) == 3


def test_a_post_is_not_retried_after_a_503_unless_idempotent(
    fake: FakeDhis2, sleep: SleepRecorder
) -> None:
    fake.add_org_unit("ClinicUnit1", "CLINIC", "Clinic")
    fake.add_data_element("StockDe0001", "SOH", "Stock on hand")
    value = {"dataElement": "StockDe0001", "period": "202611", "orgUnit": "ClinicUnit1"}
    payload = {"dataValues": [{**value, "value": "5"}]}
    session = make_session(fake, sleep)

    def posts() -> int:
        return len([r for r in fake.requests if r.method == "POST"])

    # not marked idempotent: a repeat could double the write, so the 503 is final
    fake.inject("POST", "/api/dataValueSets", status=503, times=2)
    with pytest.raises(ServerError):
        session.post_json("dataValueSets", payload)
    assert (posts(), sleep.calls, fake.data_values) == (1, [], [])

    # marked idempotent (an upsert): the remaining 503 and one more are retried, and it lands once
    fake.inject("POST", "/api/dataValueSets", status=503, times=1)
    response = session.post_json("dataValueSets", payload, idempotent=True)
    assert response.status == 200
    assert (posts(), len(sleep.calls)) == (4, 2)
    assert [(v.data_element, v.org_unit, v.value) for v in fake.data_values] == [
        ("StockDe0001", "ClinicUnit1", "5")
    ]


def test_dropped_connection_on_a_get_is_retried(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", fault="drop")
    body = make_session(fake, sleep).get_json("me")
    assert isinstance(body, dict)
    assert len(sleep.calls) == 1


def test_dropped_connection_after_a_write_is_not_retried(
    fake: FakeDhis2, sleep: SleepRecorder
) -> None:
    fake.inject("POST", "/api/dataValueSets", fault="drop_after")
    with pytest.raises(Dhis2ConnectionError):
        make_session(fake, sleep).post_json("dataValueSets", {"dataValues": []})
    assert sleep.calls == []


def test_slow_reply_past_the_read_timeout_is_a_timeout_error(
    fake: FakeDhis2, sleep: SleepRecorder
) -> None:
    fake.inject("GET", "/api/me", fault="delay", seconds=1.0, times=5)
    session = make_session(fake, sleep, timeout=0.2, retry=RetryPolicy(attempts=2))
    with pytest.raises(Dhis2TimeoutError) as raised:
        session.get_json("me")
    address = fake.url.removeprefix("http://")
    assert f"no answer within 0.2 s from {address}" in str(raised.value)
    assert raised.value.address == address


def test_html_login_page_is_an_authentication_error(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", fault="html_login")
    with pytest.raises(AuthenticationError, match="HTML"):
        make_session(fake, sleep).get_json("me")


def test_truncated_json_is_a_response_format_error(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", fault="truncated_json")
    with pytest.raises(ResponseFormatError, match="not valid JSON"):
        make_session(fake, sleep).get_json("me")


def test_malformed_json_is_a_response_format_error(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("GET", "/api/me", fault="malformed_json")
    with pytest.raises(ResponseFormatError):
        make_session(fake, sleep).get_json("me")


def test_wrong_password_raises_once_without_retry(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    session = Dhis2Session(fake.url, BasicAuth("admin", "wrong-pass-123"), sleep=sleep)
    with pytest.raises(AuthenticationError, match="basic authentication as 'admin'") as raised:
        session.get_json("me")
    assert raised.value.status == 401
    assert len(fake.requests) == 1
    assert sleep.calls == []


def test_missing_credentials_get_401_not_a_login_redirect(
    fake: FakeDhis2, sleep: SleepRecorder
) -> None:
    with pytest.raises(AuthenticationError) as raised:
        Dhis2Session(fake.url, None, sleep=sleep).get_json("me")
    assert raised.value.status == 401


def test_404_is_not_found_with_the_path(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    with pytest.raises(NotFoundError) as raised:
        make_session(fake, sleep).get_json("organisationUnits/NoSuchUnit1")
    assert raised.value.path == "/api/organisationUnits/NoSuchUnit1"


def test_409_without_accept_status_is_rejected(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    fake.inject("POST", "/api/dataValueSets", status=409)
    with pytest.raises(RequestRejectedError):
        make_session(fake, sleep).post_json("dataValueSets", {"dataValues": []})


def test_refused_connection_names_the_address_and_the_cause(sleep: SleepRecorder) -> None:
    server = FakeDhis2()
    url = server.url
    server.stop()  # the port is released: nothing listens there now
    address = url.removeprefix("http://")
    session = Dhis2Session(url, BasicAuth("admin", PASSWORD), sleep=sleep)

    with pytest.raises(Dhis2ConnectionError) as raised:
        session.get_json("me")

    assert (raised.value.address, raised.value.cause) == (address, "connection refused")
    assert f"cannot reach {address} (connection refused)" in str(raised.value)
    assert "is DHIS2 running there" in str(raised.value)
    assert len(sleep.calls) == RetryPolicy().attempts - 1  # nothing was sent: retried


def test_unknown_host_names_the_address_and_the_cause(
    sleep: SleepRecorder, no_such_host: str
) -> None:
    session = Dhis2Session(f"https://{no_such_host}/dhis", sleep=sleep)

    with pytest.raises(Dhis2ConnectionError) as raised:
        session.get_json("me")

    assert raised.value.address == f"{no_such_host}:443"
    assert raised.value.cause == "host name not resolved"
    assert f"cannot reach {no_such_host}:443 (host name not resolved)" in str(raised.value)
    assert "check the host name in [dhis2] url" in str(raised.value)


def test_connect_timeout_names_the_address_and_the_wait(sleep: SleepRecorder) -> None:
    # A listener that never accepts: once its queue is full, the kernel leaves new connection
    # attempts unanswered, as a firewall that drops packets does.
    with socket.socket() as listener, contextlib.ExitStack() as stack:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        for _ in range(64):  # fill the queue until a connection attempt goes unanswered
            probe = stack.enter_context(socket.socket())
            probe.settimeout(0.3)
            try:
                probe.connect(listener.getsockname())
            except TimeoutError:
                break
        session = Dhis2Session(f"http://{address}", connect_timeout=0.3, sleep=sleep)

        with pytest.raises(Dhis2TimeoutError) as raised:
            session.get_json("me")

    assert (raised.value.address, raised.value.cause) == (address, "timed out after 0.3 s")
    assert f"cannot reach {address} (timed out after 0.3 s)" in str(raised.value)
    assert "connect_timeout" in str(raised.value)


def test_https_to_a_plain_http_server_is_a_tls_failure(
    fake: FakeDhis2, sleep: SleepRecorder
) -> None:
    url = fake.url.replace("http://", "https://")
    session = Dhis2Session(url, BasicAuth("admin", PASSWORD), sleep=sleep)

    with pytest.raises(Dhis2ConnectionError) as raised:
        session.get_json("me")

    assert raised.value.address == url.removeprefix("https://")
    assert raised.value.cause is not None
    assert raised.value.cause.startswith("TLS handshake failed")
    assert "check verify_tls" in str(raised.value)
    assert "speaks https on this port" in str(raised.value)


def test_disabled_session_sends_nothing(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    session = make_session(fake, sleep, enabled=False)
    with pytest.raises(Dhis2DisabledError):
        session.get_json("me")
    assert fake.requests == []


def test_query_booleans_are_lowercase(fake: FakeDhis2, sleep: SleepRecorder) -> None:
    make_session(fake, sleep).get_json("me", {"paging": False, "filter": ["a:eq:1", "b:eq:2"]})
    query = fake.requests[-1].query
    assert query["paging"] == ["false"]
    assert query["filter"] == ["a:eq:1", "b:eq:2"]


@pytest.mark.parametrize("total", [0, 1, 49, 50, 51, 100, 120])
def test_iter_pages_reads_every_metadata_item_exactly_once(
    sleep: SleepRecorder, total: int
) -> None:
    with FakeDhis2(version="2.40") as fake:
        for n in range(total):
            fake.add_org_unit(f"OrgUnit{n:04d}", f"OU{n}", f"Unit {n}")
        session = make_session(fake, sleep)
        pages = list(
            session.iter_pages(
                "organisationUnits", {"fields": "id"}, items_key="organisationUnits", page_size=50
            )
        )
    ids = [item["id"] for page in pages for item in page.items]  # type: ignore[index]
    assert sorted(ids) == [f"OrgUnit{n:04d}" for n in range(total)]
    assert len(pages) == max(1, -(-total // 50)) if total else len(pages) == 0


def test_debug_log_names_method_path_and_status_but_no_secret(
    fake: FakeDhis2, sleep: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dhis2_lmis")
    make_session(fake, sleep).get_json("me")
    lines = [r.getMessage() for r in caplog.records if r.name == "dhis2_lmis.http"]
    assert any(line.startswith("GET /api/me -> 200") for line in lines)
    assert all(PASSWORD not in line for line in lines)


# -- the one batching rule ---------------------------------------------------------------------


def test_batches_keep_every_url_within_the_budget_and_the_order() -> None:
    session = Dhis2Session("https://dhis2.example.org/dhis")
    codes = [f"CODE-{n:04d}-" + "x" * (n % 30) for n in range(400)]
    fixed = {"fields": "id,code", "page": 1, "pageSize": 401}

    def select(group: Sequence[str]) -> dict[str, ParamValue]:
        return {"filter": f"code:in:[{','.join(group)}]"}

    groups = session.batches("dataElements", fixed, codes, select, max_url_length=1500)

    assert [c for group in groups for c in group] == codes
    lengths = [session.url_length("dataElements", {**fixed, **select(g)}) for g in groups]
    assert max(lengths) <= 1500
    # each group but the last is full: its next code would not have fitted
    for group, following in itertools.pairwise(groups):
        longer = session.url_length("dataElements", {**fixed, **select([*group, following[0]])})
        assert longer > 1500


def test_batches_respect_a_count_limit_with_repeated_parameters() -> None:
    session = Dhis2Session("https://dhis2.example.org")
    uids = [f"Unit{n:07d}" for n in range(25)]
    groups = session.batches(
        "dataValueSets", {}, uids, lambda g: {"orgUnit": list(g)}, max_count=10
    )
    assert [len(g) for g in groups] == [10, 10, 5]


def test_a_value_too_long_for_any_url_goes_alone_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Dhis2Session("https://dhis2.example.org")
    values = ["short", "y" * 300, "tail"]
    with caplog.at_level(logging.WARNING, logger="dhis2_lmis"):
        groups = session.batches(
            "x", {}, values, lambda g: {"filter": ",".join(g)}, max_url_length=200
        )
    assert groups == [["short"], ["y" * 300], ["tail"]]
    assert "exceeds the 200-byte URL limit" in caplog.text
