"""Reading a program over a slow server: workers=1 and workers=4 against a bare sequential loop.

FakeDhis2 2.41 runs in its own process (a real DHIS2 is another machine; in one process the
client and the server would share one interpreter lock) and answers each events page no
sooner than a production server would: 100 ms, plus 0.05 ms for each event on the page
(``dhis2_lmis.testing.Latency``). The bare loop pages by offset at ``pageSize=1000`` with
``requests``; the library reads the same completed events with its default settings. One
untimed pass of each warms the fake's rendering cache, so every timed pass costs the server the
same. Prints each time, its requests, and its ratio to the bare loop of the same run
(targets: workers=1 <= 1.1, workers=4 <= 0.35).

    python benchmarks/bench_parallel.py [--events 60000] [--workers 4] [--repeat 1]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from multiprocessing.synchronize import Event as StopEvent

import requests

from dhis2_lmis import BasicAuth, Dhis2Session, EventQuery, iter_events
from dhis2_lmis.testing import FakeDhis2, Latency

PROGRAM, STAGE, ROOT = "BenchProg01", "BenchStage1", "BenchRoot01"
START = datetime(2025, 1, 1)
VALUES = 5


def _serve(count: int, urls: multiprocessing.Queue[str], stop: StopEvent) -> None:
    """The fake DHIS2 process: a year of completed events, then serve until told to stop."""
    fake = FakeDhis2(version="2.41", latency=Latency(per_request=0.1, per_item=0.00005))
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_program(PROGRAM, "Bench", stages={STAGE: ()})
    spacing = timedelta(days=365) / max(count, 1)
    for n in range(count):
        stamp = START + spacing * n
        fake.add_event(
            f"E{n:010d}",
            PROGRAM,
            ROOT,
            program_stage=STAGE,
            data_values={f"DataElem{i:03d}": str(n % 997 + i) for i in range(VALUES)},
            occurred_at=stamp,
            updated_at=stamp,
            completed_at=stamp,
        )
    with fake:
        urls.put(fake.url)
        stop.wait()


def bare_loop(url: str) -> int:
    """What a hand-written client does: page by offset at pageSize=1000, decode, count."""
    http = requests.Session()
    seen, page = 0, 1
    while True:
        response = http.get(
            f"{url}/api/tracker/events",
            params={"program": PROGRAM, "status": "COMPLETED", "page": page, "pageSize": 1000},
            auth=("admin", "district"),
            timeout=60,
        )
        events = response.json()["events"]
        seen += len(events)
        if len(events) < 1000:
            http.close()
            return seen
        page += 1


def library(url: str, workers: int) -> int:
    """The library with its default settings: a session and an EventQuery of the program."""
    with Dhis2Session(url, BasicAuth("admin", "district")) as session:
        query = EventQuery(program=PROGRAM, status="COMPLETED")
        return sum(1 for _ in iter_events(session, query, workers=workers))


class _Requests(logging.Handler):
    """Counts the library's HTTP attempts (one DEBUG line each on ``dhis2_lmis.http``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def timed(repeat: int, run: Callable[[], int], expected: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        read = run()
        best = min(best, time.perf_counter() - started)
        assert read == expected, f"read {read} events, expected {expected}"
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    urls: multiprocessing.Queue[str] = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(args.events, urls, stop), daemon=True)
    started = time.perf_counter()
    server.start()
    url = urls.get(timeout=600)
    seeded = time.perf_counter() - started
    counter = _Requests()
    http_log = logging.getLogger("dhis2_lmis.http")
    http_log.addHandler(counter)
    http_log.setLevel(logging.DEBUG)
    try:
        assert bare_loop(url) == args.events  # warm-up passes: the fake renders each event once
        assert library(url, 1) == args.events
        bare = timed(args.repeat, lambda: bare_loop(url), args.events)
        counter.count = 0
        one = timed(args.repeat, lambda: library(url, 1), args.events)
        one_requests = counter.count // args.repeat
        counter.count = 0
        many = timed(args.repeat, lambda: library(url, args.workers), args.events)
        many_requests = counter.count // args.repeat
    finally:
        stop.set()
        server.join(timeout=10)
    pages = -(-args.events // 1000) + (args.events % 1000 == 0)
    print(f"events read                 {args.events:>10,}  (seeded in {seeded:.1f} s)")
    print("server latency per page     100 ms + 0.05 ms an event, in its own process")
    print(f"bare requests loop          {bare:>10.2f} s  ({pages} requests, pageSize=1000)")
    print(f"iter_events workers=1       {one:>10.2f} s  ({one_requests} requests)")
    print(f"iter_events workers={args.workers:<2}      {many:>10.2f} s  ({many_requests} requests)")
    print(f"ratio workers=1 / bare      {one / bare:>10.2f}    target <= 1.1")
    print(f"ratio workers={args.workers} / bare      {many / bare:>10.2f}    target <= 0.35")


if __name__ == "__main__":
    main()
