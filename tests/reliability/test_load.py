"""Load: fifty threads share one Dhis2Lmis against FakeDhis2 on 127.0.0.1 for a bounded time.

The session docstring promises that sharing works (``requests.Session`` pools connections per
host; ``BodyAuth`` locks its grant). Here fifty threads read orders, push data values and test
the connection for ``DHIS2_LMIS_LOAD_SECONDS`` seconds (default 10 s, so CI stays fast; the
issue's 30 s soak is ``DHIS2_LMIS_LOAD_SECONDS=30``), while every token is expired halfway.
Checked: no errors; one OAuth2 grant and exactly one refresh, not fifty; no more sockets than
the pool allows while running and no file descriptor left once closed; a request count bounded
by the work done; every data value stored once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.auth import BodyAuth
from dhis2_lmis.dhis2.retry import RetryPolicy
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.testing import FakeDhis2

THREADS = 50
SECONDS = float(os.environ.get("DHIS2_LMIS_LOAD_SECONDS", "10"))
ORDER, STAGE, ROOT, FACILITY = "OrderProg01", "OrderStage1", "RootUnit001", "FacilityA01"
AMOX, PARA, DATA_SET = "DeAmox00001", "DePara00001", "DataSetSoh1"
USER, PASSWORD = "lmis", "Load-Test-Pa55"
CLIENT_ID, CLIENT_SECRET = "lmis-client", "client-S3cret-x"
FD_DIR = Path("/proc/self/fd")

pytestmark = pytest.mark.skipif(not FD_DIR.is_dir(), reason="counts file descriptors in /proc")


def open_fds() -> dict[str, str]:
    found = {}
    for entry in FD_DIR.iterdir():
        try:
            found[entry.name] = os.readlink(entry)
        except OSError:
            continue  # closed between listing and reading (the listing's own descriptor)
    return found


def sockets() -> int:
    return sum(1 for target in open_fds().values() if target.startswith("socket:"))


def wait_until(condition: object, seconds: float = 5.0) -> bool:
    """Poll ``condition()`` (the fake's threads close sockets a moment after the client)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        threading.Event().wait(0.05)
    return bool(condition())  # type: ignore[operator]


def seed(fake: FakeDhis2) -> None:
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A", parent=ROOT)
    for uid, code in ((AMOX, "AMOX250"), (PARA, "PARA500")):
        fake.add_data_element(uid, code, code, domain_type="TRACKER")
    fake.add_data_element("DeAggAmox01", "SOH_AMOX250", "SOH Amoxicillin")
    fake.add_data_element("DeAggPara01", "SOH_PARA500", "SOH Paracetamol")
    fake.add_data_set(
        DATA_SET,
        "LMIS_SOH",
        "Stock on hand",
        data_elements=("DeAggAmox01", "DeAggPara01"),
        org_units=(FACILITY,),
    )
    fake.add_program(ORDER, "Order", stages={STAGE: (AMOX, PARA)})
    fake.add_user(USER, PASSWORD, org_units=(ROOT,))
    fake.add_oauth_client(CLIENT_ID, CLIENT_SECRET)
    for n in range(3):
        fake.add_event(
            f"OrderEvnt0{n}", ORDER, FACILITY, program_stage=STAGE, data_values={AMOX: 10 + n}
        )


def build(fake: FakeDhis2) -> Dhis2Lmis:
    config = Dhis2Config.from_dict(
        {
            "dhis2": {
                "url": fake.url,
                "auth": "body",
                "username": USER,
                "password": PASSWORD,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            "lmis": {"data_set": DATA_SET, "data_element_id_scheme": "CODE"},
            "programs": {"order": ORDER},
            "sync": {"page_size": 50},
        },
        environ={},
    )
    auth = BodyAuth(USER, PASSWORD, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    session = Dhis2Session(
        fake.url,
        auth,
        timeout=30.0,
        retry=RetryPolicy(attempts=4),
        pool_maxsize=THREADS,  # one pooled connection per sharing thread
        sleep=lambda _: None,
    )
    return Dhis2Lmis(config, session=session)


class Worker:
    """One thread's loop: read orders, push values, test the connection; count and collect."""

    def __init__(self, lmis: Dhis2Lmis, n: int, deadline: float) -> None:
        self.lmis, self.n, self.deadline = lmis, n, deadline
        self.operations = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        step = self.n
        while time.monotonic() < self.deadline:
            try:
                self.once(step % 3)
            except BaseException as exc:  # every failure is a finding: keep it for the assert
                self.errors.append(exc)
                return
            step += 1
            self.operations += 1

    def once(self, kind: int) -> None:
        lmis = self.lmis
        if kind == 0:
            events = list(lmis.pull("order"))
            assert len(events) == 3
        elif kind == 1:
            builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
            builder.add("SOH_AMOX250", 340)
            builder.add("SOH_PARA500", 12)
            summary = lmis.push_data_values(builder)
            assert summary.status == "SUCCESS" and summary.total == 2, summary
        else:
            check = lmis.test_connection()
            assert check.ok, check.message


@pytest.fixture
def fds_before() -> dict[str, str]:
    return open_fds()


def test_fifty_threads_share_one_client_without_errors_leaks_or_refresh_storms(
    fds_before: dict[str, str],
) -> None:
    fake = FakeDhis2(version="2.41")
    seed(fake)
    fake.start()
    lmis = build(fake)
    try:
        _ = lmis.session.server_info  # the first grant, outside the threads
        deadline = time.monotonic() + SECONDS
        workers = [Worker(lmis, n, deadline) for n in range(THREADS)]
        threads = [threading.Thread(target=w.run, name=f"load-{w.n}") for w in workers]
        for thread in threads:
            thread.start()
        threading.Event().wait(SECONDS / 2)  # the test's duration itself, not a retry wait
        fake.expire_tokens()
        for thread in threads:
            thread.join(timeout=SECONDS + 60)
        assert not any(t.is_alive() for t in threads), "a worker hung"
        peak_sockets = sockets()
        errors = [e for w in workers for e in w.errors]
        operations = sum(w.operations for w in workers)
        requests = fake.requests
    finally:
        lmis.close()
        fake.stop()

    assert errors == [], errors[:3]
    assert operations >= THREADS  # every thread did real work
    auth = lmis.session.auth
    assert isinstance(auth, BodyAuth)
    assert (auth.grants, auth.refreshes) == (1, 1)  # one refresh for fifty threads
    token_calls = [r for r in requests if r.path == "/uaa/oauth/token"]
    assert len(token_calls) == 2
    api = [r for r in requests if r.path.startswith("/api/")]
    unauthorized = [r for r in api if r.status == 401]
    assert len(unauthorized) <= THREADS  # at most one 401 per in-flight request
    # one request per operation (pull: one page; push: one chunk; me), plus the first system
    # info and one resend per 401
    assert len(api) <= operations + THREADS + 1 + len(unauthorized)
    assert all(r.status in (200, 401) for r in api), {r.status for r in api}
    # pooled: both ends of at most one connection per thread, plus the listening socket
    assert peak_sockets <= 2 * THREADS + 5 + sum(
        1 for t in fds_before.values() if t.startswith("socket:")
    )
    stored = [(v.data_element, v.value) for v in fake.data_values]
    assert sorted(stored) == [("DeAggAmox01", "340"), ("DeAggPara01", "12")]
    # every descriptor the run opened is closed again
    assert wait_until(lambda: set(open_fds()) <= set(fds_before)), sorted(
        set(open_fds().items()) - set(fds_before.items())
    )
