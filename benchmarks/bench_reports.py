"""Stock reports: one month of a data set for N facilities x M items, batched and streamed.

A separate process runs a FakeDhis2 (2.41) seeded straight through its world (add_data_value
per value would take minutes at 200,000 values), so this process's traced memory is the
library's alone. Each facility has one data value per item; items and customers are mapped, so
every line resolves.

Two reads of the same month, each run once timed and once under tracemalloc:

* ``batched``: ``StockReportReader.read(period)``, the library's way: the data set's org units
  below the user's roots, ``batch_size`` per request, reports consumed one at a time;
* ``one request`` (baseline): ``orgUnit=<root>&children=true`` in one request, the answer
  converted with ``reports_of`` and consumed the same way.

Prints request counts, time per facility and peak traced memory, and the ratios.

    python benchmarks/bench_reports.py [--facilities 1000] [--items 200] [--batch-size 50]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime
from multiprocessing.connection import Connection

from dhis2_lmis import BasicAuth, Dhis2Session
from dhis2_lmis.lmis.models import Customer, Item, StockReport
from dhis2_lmis.lmis.references import ItemResolver, OrgUnitResolver
from dhis2_lmis.lmis.reports import StockReportReader

ROOT = "BenchRoot01"
DATA_SET = "BenchDsSoh1"
PERIOD = "202611"
SOH_COC = "HllvX50cXC0"


def _facility(n: int) -> str:
    return f"Fac{n:08d}"


def _element(i: int) -> str:
    return f"De{i:09d}"


def _serve(facilities: int, items: int, conn: Connection) -> None:
    from dhis2_lmis.testing import AggregateValue, FakeDhis2  # noqa: PLC0415 - child only

    fake = FakeDhis2("2.41", now=datetime(2026, 12, 1, 8, 0, 0))
    fake.add_org_unit(ROOT, "ROOT", "Country")
    for n in range(facilities):
        fake.add_org_unit(_facility(n), f"FAC{n}", f"Facility {n}", parent=ROOT)
    for i in range(items):
        fake.add_data_element(_element(i), f"ITEM{i}", f"Item {i}")
    fake.add_data_set(
        DATA_SET,
        "SOH",
        "Stock on hand",
        data_elements=[_element(i) for i in range(items)],
        org_units=[_facility(n) for n in range(facilities)],
    )
    stamp = fake.tick()
    store = fake.world.data_values
    with fake.world.lock:
        for n in range(facilities):
            org_unit = _facility(n)
            for i in range(items):
                element = _element(i)
                key = (element, PERIOD, org_unit, SOH_COC, SOH_COC)
                store[key] = AggregateValue(
                    *key,
                    value=str((n * 7 + i) % 5000),
                    stored_by="bench",
                    created=stamp,
                    last_updated=stamp,
                )
    with fake:
        conn.send(fake.url)
        while conn.recv() == "count":
            conn.send(len([r for r in fake.requests if r.path == "/api/dataValueSets"]))
            fake.clear_requests()


def _consume(reports: Iterator[StockReport]) -> tuple[int, int]:
    count = lines = 0
    for report in reports:  # streaming: one report alive at a time
        count += 1
        lines += len(report.lines)
    return count, lines


def _measure(run: Callable[[], tuple[int, int]]) -> tuple[float, int, tuple[int, int]]:
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facilities", type=int, default=1000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve, args=(args.facilities, args.items, child), daemon=True
    )
    seeding = time.perf_counter()
    server.start()
    url = parent.recv()
    print(
        f"seeded {args.facilities} facilities x {args.items} items = "
        f"{args.facilities * args.items:,} values in {time.perf_counter() - seeding:.1f} s"
    )

    session = Dhis2Session(url, BasicAuth("admin", "district"), timeout=600)
    item_list = [Item(f"I{i}", f"Item {i}", universal_code=f"ITEM{i}") for i in range(args.items)]
    customers = [
        Customer(f"C{n}", f"Facility {n}", custom_fields={"Dhis2Code": _facility(n)})
        for n in range(args.facilities)
    ]
    reader = StockReportReader(
        session,
        data_set=DATA_SET,
        period_format="YYYYMM",
        data_element_id_scheme="CODE",
        items=ItemResolver(item_list, id_scheme="CODE", session=session),
        org_units=OrgUnitResolver((), customers, name_field="Dhis2Code", session=session),
        batch_size=args.batch_size,
    )
    session.server_info  # noqa: B018 - fetch the cached system info outside the timings

    def batched() -> tuple[int, int]:
        return _consume(reader.read(PERIOD))

    def one_request() -> tuple[int, int]:
        params = {"dataSet": DATA_SET, "period": PERIOD, "orgUnit": ROOT, "children": True}
        body = session.get_json("dataValueSets", {**params, "dataElementIdScheme": "CODE"})
        return _consume(reader.reports_of(body, PERIOD))

    rows = []
    for label, run in (("batched", batched), ("one request", one_request)):
        parent.send("count")
        parent.recv()  # reset the server's request log
        elapsed, peak, (reports, lines) = _measure(run)
        parent.send("count")
        requests_sent = parent.recv() // 2  # two runs: timed and traced
        rows.append((label, elapsed, peak, reports, lines, requests_sent))
        assert reports == args.facilities, reports
        assert lines == args.facilities * args.items, lines

    print(f"{'read':<12} {'requests':>8} {'total s':>8} {'ms/facility':>12} {'peak MiB':>9}")
    for label, elapsed, peak, _, _, sent in rows:
        print(
            f"{label:<12} {sent:>8} {elapsed:>8.2f} "
            f"{elapsed * 1000 / args.facilities:>12.2f} {peak / 2**20:>9.1f}"
        )
    (_, t_batched, m_batched, *_), (_, t_one, m_one, *_) = rows
    print(
        f"batched / one request: time {t_batched / t_one:.2f}x, "
        f"peak memory {m_batched / m_one:.2f}x"
    )
    parent.send("stop")
    server.join(timeout=10)
    session.close()


if __name__ == "__main__":
    main()
