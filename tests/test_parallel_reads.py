"""iter_events and the fetchers with workers > 1: the same exact set as one worker, under edits,
faults and expiring credentials, on every DHIS2 version, and a clean stop."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from urllib3 import HTTPConnectionPool

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.auth import BodyAuth
from dhis2_lmis.dhis2.events import EventQuery, iter_events
from dhis2_lmis.dhis2.records import Event
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import RequestRejectedError
from dhis2_lmis.testing import FakeDhis2
from tests.test_events import PROGRAM, QTY, STAGE, START, VERSIONS, no_sleep, seed, session_for

EVENTS_PATH = "/api/tracker/events"


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def read(session: Dhis2Session, *, workers: int, page_size: int = 20) -> Iterator[Event]:
    query = EventQuery(program=PROGRAM, status="COMPLETED", page_size=page_size)
    return iter_events(session, query, workers=workers)


def completed_uids(fake: FakeDhis2) -> set[str]:
    return {
        uid
        for uid, event in fake.events.items()
        if event.status == "COMPLETED" and not event.deleted and event.program == PROGRAM
    }


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("dhis2-lmis-events")]


def connections_in_use(session: Dhis2Session) -> int:
    """Connections taken out of the session's pools and not given back."""
    pools = session._http.get_adapter(session.url).poolmanager.pools
    in_use = 0
    for key in pools.keys():  # noqa: SIM118 - the container refuses plain iteration
        pool = pools[key]
        assert isinstance(pool, HTTPConnectionPool) and pool.pool is not None
        in_use += pool.pool.maxsize - pool.pool.qsize()
    assert len(pools) == 1  # the read used one pool, for its host
    return in_use


@pytest.mark.parametrize("total", [0, 1, 59, 300])
def test_workers_read_the_same_exact_set_as_one_worker(version: str, total: int) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, total)
        session = session_for(fake)
        one = [e.uid for e in read(session, workers=1)]
        four = [e.uid for e in read(session, workers=4)]
    assert sorted(four) == sorted(one) == sorted(expected)
    assert len(four) == len(set(four))


@pytest.mark.parametrize("version", ["2.36", "2.38", "2.41"])
def test_legacy_events_api_in_parallel_reads_the_same_set(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 150)
        uids = [e.uid for e in read(session_for(fake, legacy_events=True), workers=3)]
    assert sorted(uids) == sorted(expected)
    assert all(r.path == "/api/events" for r in fake.requests if "events" in r.path)


def test_a_run_of_identical_timestamps_splits_nowhere_and_loses_nothing(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 130, same_time=True)
        uids = [e.uid for e in read(session_for(fake), workers=4, page_size=50)]
    assert sorted(uids) == sorted(expected)


def test_a_skewed_program_keeps_every_worker_busy() -> None:
    """Nearly all events in the last of four windows: idle workers take halves of it."""
    with FakeDhis2(version="2.41") as fake:
        expected = seed(fake, 240)
        fake.touch_event("Ev000000000")  # one event far newer than the rest
        session = session_for(fake)
        fake.clear_requests()
        uids = [e.uid for e in read(session, workers=4, page_size=10)]
    ends = {r.query.get("updatedBefore", [""])[0] for r in fake.requests if r.path == EVENTS_PATH}
    assert sorted(uids) == sorted(expected)
    assert len(ends) > 6  # the busy window was split: more ends than the four planned windows


def test_events_edited_and_added_while_read_are_neither_lost_nor_doubled(version: str) -> None:
    """Until the read ends, unread events of every window and read ones get newer updatedAt.

    Most events are updated in one burst, so the first window is done long before the others.
    """
    with FakeDhis2(version=version) as fake:
        seeded = sorted(seed(fake, 300))
        fake.now = START + dt.timedelta(days=1)
        for uid in seeded[50:]:
            fake.touch_event(uid)
        fake.now = START + dt.timedelta(days=2)
        reader = read(session_for(fake), workers=3, page_size=10)
        yielded: list[str] = []
        added = 0
        while chunk := [e.uid for e in itertools.islice(reader, 15)]:
            yielded += chunk
            done = set(yielded)
            unread = [uid for uid in seeded if uid not in done]
            for uid in [*unread[:: max(1, len(unread) // 3)][:3], yielded[-1]]:
                fake.touch_event(uid, data_values={QTY: "7"})
            if len(yielded) % 60 == 0 and len(yielded) <= 200:  # surely before the tail is read
                fake.add_event(None, PROGRAM, "FacilityA01", program_stage=STAGE)
                added += 1
        expected = completed_uids(fake)
    assert sorted(yielded) == sorted(expected)
    assert len(expected) == 300 + added and added >= 3


def test_a_dropped_connection_and_a_503_in_one_window_are_retried(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 200)
        reader = read(session_for(fake), workers=4, page_size=10)
        head = [e.uid for e in itertools.islice(reader, 30)]
        fake.inject("GET", EVENTS_PATH, fault="drop")
        fake.inject("GET", EVENTS_PATH, status=503)
        uids = head + [e.uid for e in reader]
        statuses = [r.status for r in fake.requests if r.path == EVENTS_PATH]
    assert sorted(uids) == sorted(expected)
    assert None in statuses and 503 in statuses


@pytest.mark.parametrize("version", ["2.36", "2.40", "2.41"])
def test_an_expiring_oauth2_token_is_refreshed_once_for_every_worker(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 200)
        fake.add_oauth_client("lmis", "client-secret")
        auth = BodyAuth("admin", "district", client_id="lmis", client_secret="client-secret")
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        reader = read(session, workers=4, page_size=10)
        head = [e.uid for e in itertools.islice(reader, 30)]
        fake.expire_tokens()
        uids = head + [e.uid for e in reader]
    assert sorted(uids) == sorted(expected)
    assert (auth.grants, auth.refreshes) == (1, 1)


@pytest.mark.parametrize("version", ["2.39", "2.41", "2.43"])
def test_an_expiring_session_cookie_logs_in_once_for_every_worker(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        expected = seed(fake, 200)
        auth = BodyAuth("admin", "district")
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        reader = read(session, workers=4, page_size=10)
        head = [e.uid for e in itertools.islice(reader, 30)]
        fake.expire_tokens()
        uids = head + [e.uid for e in reader]
    assert sorted(uids) == sorted(expected)
    assert auth.logins == 2


def test_a_rejected_request_in_one_window_raises_the_same_error_and_stops_all() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake, 200)
        session = session_for(fake)
        reader = read(session, workers=4, page_size=10)
        head = [e.uid for e in itertools.islice(reader, 30)]
        fake.inject("GET", EVENTS_PATH, status=400)
        with pytest.raises(RequestRejectedError) as raised:
            list(reader)
        assert raised.value.status == 400
        assert reader_threads() == []
        assert connections_in_use(session) == 0
    assert len(head) == 30


def test_stopping_early_releases_every_thread_and_connection(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        seed(fake, 300)
        session = session_for(fake)
        reader = read(session, workers=4, page_size=10)
        head = list(itertools.islice(reader, 15))
        assert reader_threads()  # still reading ahead, into the bounded queue
        reader.close()  # type: ignore[attr-defined]  # a generator
        assert reader_threads() == []
        assert connections_in_use(session) == 0
        requests_after_stop = len(fake.requests)
        time.sleep(0.3)  # a reader still running would ask for its next page by now
        assert len(fake.requests) == requests_after_stop
    assert len(head) == 15


def test_ctrl_c_while_waiting_for_a_page_stops_every_thread() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake, 100)
        session = session_for(fake)
        reader = read(session, workers=2, page_size=10)
        head = list(itertools.islice(reader, 5))
        fake.inject("GET", EVENTS_PATH, fault="delay", seconds=0.5, times=20)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            list(reader)
        timer.join()
        assert reader_threads() == []
        assert connections_in_use(session) == 0
    assert len(head) == 5


def test_workers_below_one_is_a_clear_error() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake, 1)
        with pytest.raises(ValueError, match="workers must be at least 1"):
            next(read(session_for(fake), workers=0))


def test_the_fetchers_take_workers_and_return_the_same_records() -> None:
    with FakeDhis2(version="2.41") as fake:
        expected = seed(fake, 120)
        config = Dhis2Config.from_dict(
            {
                "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
                "programs": {"order": PROGRAM, "receipt": PROGRAM, "str": PROGRAM},
                "sync": {"page_size": 10},
            }
        )
        with Dhis2Lmis(config) as lmis:
            one = {r.event.uid: r.lines for r in lmis.fetch_completed_requisitions()}
            four = {r.event.uid: r.lines for r in lmis.fetch_completed_requisitions(workers=4)}
            receipts = {r.event.uid for r in lmis.fetch_completed_receipts(workers=3)}
            stock = {t.event.uid for t in lmis.fetch_stock_transactions(workers=2)}
            pulled = {e.uid for e in lmis.pull("order", workers=4)}
            records = lmis.fetch_completed_requisitions(workers=4)
            next(records)
            assert reader_threads()
            records.close()  # type: ignore[attr-defined]  # a generator
            assert reader_threads() == []
    assert four == one and set(four) == set(expected)
    assert receipts == stock == pulled == set(expected)


@pytest.mark.parametrize("seed_", range(16))
def test_random_programs_workers_and_edits_read_each_event_once(seed_: int) -> None:
    """Random sizes, runs of identical timestamps, bunching, page sizes, workers and edits at
    random moments of the read (runs stay within ten pages, which are read whole)."""
    rng = random.Random(seed_)
    with FakeDhis2(version=rng.choice(VERSIONS)) as fake:
        seeded = sorted(seed(fake, rng.randint(2, 250), same_time=rng.random() < 0.3))
        fake.now = START + dt.timedelta(days=1)
        bunched = rng.sample(seeded, len(seeded) // 2)  # half of them updated in one burst
        for uid in bunched:
            fake.touch_event(uid)
        fake.now = START + dt.timedelta(days=2)
        reader = read(session_for(fake), workers=rng.randint(1, 6), page_size=rng.randint(13, 40))
        yielded: list[str] = []
        while chunk := [e.uid for e in itertools.islice(reader, rng.randint(1, 30))]:
            yielded += chunk
            for uid in rng.sample(seeded, 2):
                fake.touch_event(uid, data_values={QTY: rng.randint(1, 9)})
        expected = completed_uids(fake)
    assert sorted(yielded) == sorted(expected)
