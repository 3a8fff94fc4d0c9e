"""Pushing data values: build + chunked push against a bare requests.post of the same chunks.

A separate process answers ``POST /api/dataValueSets`` with a 2.41 import summary counting the
values it received. The bare baseline posts chunks serialised in advance (its serialisation is
not timed); the library builds the set from Python numbers and pushes it. Prints the time
ratio (target <= 1.2) and the library's peak traced memory against the JSON payload size
(target <= 2x).

    python benchmarks/bench_push.py [--values 100000] [--chunk 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from _timing import best_of_alternating

from dhis2_lmis import BasicAuth, DataValueSetBuilder, Dhis2Session
from dhis2_lmis.lmis.datavalues import push_data_value_set

DATA_SET, PERIOD, ORG_UNIT = "BenchDataSt", "202611", "BenchOrgUnt"


def _serve(port_queue: multiprocessing.Queue[int]) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            count = len(json.loads(self.rfile.read(length))["dataValues"])
            summary = {
                "httpStatus": "OK",
                "httpStatusCode": 200,
                "status": "OK",
                "message": "Import was successful.",
                "response": {
                    "responseType": "ImportSummary",
                    "status": "SUCCESS",
                    "importCount": {"imported": count, "updated": 0, "ignored": 0, "deleted": 0},
                    "conflicts": [],
                },
            }
            body = json.dumps(summary).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def values(count: int) -> list[tuple[str, str, float]]:
    return [(f"DataElem{n % 500:03d}", f"Coc{n // 500:08d}", n * 1.5) for n in range(count)]


def build(rows: list[tuple[str, str, float]]) -> DataValueSetBuilder:
    builder = DataValueSetBuilder(DATA_SET, PERIOD, ORG_UNIT, round_off=True)
    for element, combo, value in rows:
        builder.add(element, value, category_option_combo=combo)
    return builder


def bare(url: str, chunks: list[bytes]) -> int:
    http = requests.Session()
    imported = 0
    for chunk in chunks:
        response = http.post(
            f"{url}/api/dataValueSets",
            data=chunk,
            headers={"Content-Type": "application/json"},
            auth=("admin", "district"),
            timeout=60,
        )
        imported += response.json()["response"]["importCount"]["imported"]
    return imported


def library(url: str, rows: list[tuple[str, str, float]], chunk: int) -> int:
    session = Dhis2Session(url, BasicAuth("admin", "district"))
    summary = push_data_value_set(session, build(rows), chunk_size=chunk)
    session.close()
    return summary.imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows = values(args.values)
    chunks = [
        json.dumps(payload, separators=(",", ":")).encode()
        for payload in build(rows).iter_chunks(args.chunk)
    ]
    payload_mb = sum(len(c) for c in chunks) / 1e6

    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=60)}"
    try:
        assert bare(url, chunks) == args.values
        assert library(url, rows, args.chunk) == args.values
        base, lib = best_of_alternating(
            args.repeat, lambda: bare(url, chunks), lambda: library(url, rows, args.chunk)
        )
        tracemalloc.start()
        library(url, rows, args.chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        server.terminate()
    print(f"values pushed               {args.values:>10,}  (chunks of {args.chunk:,})")
    print(f"bare requests.post          {base:>10.2f} s  (pre-serialised chunks)")
    print(f"dhis2_lmis build + push     {lib:>10.2f} s")
    print(f"ratio library / bare        {lib / base:>10.2f}    target <= 1.2")
    print(f"JSON payload                {payload_mb:>10.1f} MB")
    ratio = peak / 1e6 / payload_mb
    print(f"library peak memory  {peak / 1e6:>10.1f} MB ({ratio:.1f}x payload) target <= 2x")


if __name__ == "__main__":
    main()
