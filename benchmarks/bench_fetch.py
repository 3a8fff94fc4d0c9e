"""Reading events: the library against a bare requests + json paging loop, same pages, same run.

A separate process serves pre-rendered 2.41-shaped event pages (one JSON blob per event,
joined per request), answering both offset paging (the bare loop) and the library's
``updatedAfter`` keyset cursor from the same bytes. Prints the time ratio (target <= 1.3) and
the peak traced memory of the library's read at 10,000 and 100,000 events (target: growth
<= 10 MB).

The replay server answers every page in the same time, so that ratio is the library's own
cost. A second measurement reads the same kind of program from FakeDhis2 2.41, a stand-in
that, like DHIS2's SQL ``OFFSET``, gets slower the deeper the page: there the bare loop pages
by offset while the library keys on ``updatedAt``, and the ratio shows what that is worth.

    python benchmarks/bench_fetch.py [--events 100000] [--page-size 1000] [--repeat 5]
                                     [--stand-in-events 5000]
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import time
import tracemalloc
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests
from _timing import best_of_alternating

from dhis2_lmis import BasicAuth, Dhis2Session, EventQuery, iter_events
from dhis2_lmis.testing import FakeDhis2

PROGRAM = "BenchProg01"
START = datetime(2026, 1, 1)
SYSTEM_INFO = json.dumps(
    {"version": "2.41.0", "serverTimeZoneId": "Africa/Nairobi", "contextPath": ""}
).encode()


def _event(n: int) -> tuple[str, bytes]:
    stamp = (START + timedelta(seconds=n)).isoformat(timespec="milliseconds")
    event = {
        "event": f"E{n:010d}",
        "status": "COMPLETED",
        "program": PROGRAM,
        "programStage": "BenchStage1",
        "orgUnit": "DiszpKrYNg8",
        "occurredAt": stamp,
        "scheduledAt": stamp,
        "createdAt": stamp,
        "updatedAt": stamp,
        "completedAt": stamp,
        "completedBy": "admin",
        "storedBy": "admin",
        "attributeOptionCombo": "HllvX50cXC0",
        "deleted": False,
        "followUp": False,
        "dataValues": [
            {
                "dataElement": f"DataElem{i:03d}",
                "value": str(n % 997 + i),
                "providedElsewhere": False,
                "storedBy": "admin",
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            for i in range(8)
        ],
        "notes": [],
    }
    return stamp, json.dumps(event, separators=(",", ":")).encode()


def _serve(count: int, port_queue: multiprocessing.Queue[int]) -> None:
    rendered = [_event(n) for n in range(count)]
    stamps = [stamp for stamp, _ in rendered]
    blobs = [blob for _, blob in rendered]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/api/system/info":
                self._send(SYSTEM_INFO)
                return
            query = parse_qs(url.query)
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("pageSize", ["50"])[0])
            start = 0
            if "updatedAfter" in query:  # stamps are sorted and unique: a keyset lookup
                start = bisect.bisect_right(stamps, query["updatedAfter"][0])
            start += (page - 1) * size
            chunk = blobs[start : start + size]
            head = json.dumps({"pager": {"page": page, "pageSize": size}}).encode()[:-1]
            body = head + b',"page":%d,"pageSize":%d,"events":[' % (page, size)
            self._send(body + b",".join(chunk) + b"]}")

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def bare_loop(url: str, count: int, page_size: int) -> int:
    """What a hand-written client does: page by offset, decode, count."""
    http = requests.Session()
    seen, page = 0, 1
    while True:
        response = http.get(
            f"{url}/api/tracker/events",
            params={"program": PROGRAM, "page": page, "pageSize": page_size},
            auth=("admin", "district"),
            timeout=60,
        )
        events = json.loads(response.content)["events"]
        seen += len(events)
        if len(events) < page_size or seen >= count:
            return seen
        page += 1


def library(url: str, count: int, page_size: int) -> int:
    session = Dhis2Session(url, BasicAuth("admin", "district"))
    query = EventQuery(program=PROGRAM, page_size=page_size)
    seen = 0
    for _ in iter_events(session, query):
        seen += 1
        if seen >= count:
            break
    session.close()
    return seen


def stand_in(count: int, page_size: int) -> tuple[float, float]:
    """Seconds of the bare offset loop and of the library against FakeDhis2 2.41."""
    with FakeDhis2(version="2.41") as fake:
        fake.add_org_unit("BenchRoot01", "ROOT", "Country")
        fake.add_program(PROGRAM, "Bench", stages={"BenchStage1": ()})
        for n in range(count):
            stamp = START + timedelta(seconds=n)
            values = {f"DataElem{i:03d}": str(n % 997 + i) for i in range(8)}
            fake.add_event(
                f"E{n:010d}",
                PROGRAM,
                "BenchRoot01",
                program_stage="BenchStage1",
                data_values=values,
                occurred_at=stamp,
                updated_at=stamp,
                completed_at=stamp,
            )
        started = time.perf_counter()
        assert bare_loop(fake.url, count, page_size) == count
        bare = time.perf_counter() - started
        started = time.perf_counter()
        assert library(fake.url, count, page_size) == count
        return bare, time.perf_counter() - started


def peak_mb(url: str, count: int, page_size: int) -> float:
    tracemalloc.start()
    library(url, count, page_size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stand-in-events", type=int, default=5000)
    args = parser.parse_args()

    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(args.events, ports), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=120)}"
    try:
        assert library(url, args.events, args.page_size) == args.events
        assert bare_loop(url, args.events, args.page_size) == args.events
        bare, lib = best_of_alternating(
            args.repeat,
            lambda: bare_loop(url, args.events, args.page_size),
            lambda: library(url, args.events, args.page_size),
        )
        small = min(10_000, args.events)
        mem_small = peak_mb(url, small, args.page_size)
        mem_large = peak_mb(url, args.events, args.page_size)
    finally:
        server.terminate()
    print(f"events read                 {args.events:>10,}  (page size {args.page_size})")
    print(f"bare requests + json loop   {bare:>10.2f} s  ({bare / args.events * 1e6:.1f} us/event)")
    print(f"dhis2_lmis iter_events      {lib:>10.2f} s  ({lib / args.events * 1e6:.1f} us/event)")
    print(f"ratio library / bare        {lib / bare:>10.2f}    target <= 1.3")
    print(f"peak memory at {small:>7,}     {mem_small:>10.1f} MB")
    print(f"peak memory at {args.events:>7,}     {mem_large:>10.1f} MB")
    print(f"growth                      {mem_large - mem_small:>10.1f} MB  target <= 10 MB")
    if args.stand_in_events:
        bare_s, lib_s = stand_in(args.stand_in_events, args.page_size)
        print(f"FakeDhis2 2.41, {args.stand_in_events:,} events: bare offset loop {bare_s:.2f} s")
        print(f"FakeDhis2 2.41, {args.stand_in_events:,} events: iter_events {lib_s:.2f} s")
        print(f"stand-in ratio library / bare {lib_s / bare_s:>8.2f}    target <= 1.5")


if __name__ == "__main__":
    main()
