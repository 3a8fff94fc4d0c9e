"""SyncRunner.run_once over many completed events in FakeDhis2, with a no-op handler.

Run: ``python benchmarks/bench_sync.py [--events N] [--version 2.41]``.

Prints the events per second of a first run (everything new), against a baseline from the same
run: reading the same events through ``fetch_completed_requisitions`` without any state, so the
ratio is the cost of de-duplication, per-event outcome commits and cursor moves. Then the state
file's size, and the requests of a second run with nothing new (target: at most 2 per program).
Times are printed for information only; nothing is asserted about them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections import Counter
from pathlib import Path

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.lmis.models import Requisition
from dhis2_lmis.run.state import SqliteStateStore
from dhis2_lmis.run.sync import SyncRunner
from dhis2_lmis.testing import FakeDhis2

ORDER, STAGE, FACILITY, ROOT = "OrderProg01", "OrderStage1", "FacilityA01", "RootUnit001"
DATA_ELEMENTS = tuple(f"DeItem{n:05d}" for n in range(8))
T0 = dt.datetime(2026, 11, 2, 9, 0, 0)


def seed(fake: FakeDhis2, events: int) -> None:
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A", parent=ROOT)
    for n, uid in enumerate(DATA_ELEMENTS):
        fake.add_data_element(uid, f"ITEM{n}", f"Item {n}", domain_type="TRACKER")
    fake.add_program(ORDER, "Order", stages={STAGE: DATA_ELEMENTS})
    values = {uid: str(10 + n) for n, uid in enumerate(DATA_ELEMENTS)}
    for n in range(events):
        at = T0 + dt.timedelta(seconds=n)  # one a second: the 5-minute overlap holds 300
        fake.add_event(
            f"Ev{n:09d}",
            ORDER,
            FACILITY,
            program_stage=STAGE,
            data_values=values,
            occurred_at=at,
            updated_at=at,
        )


def state_size(path: Path) -> int:
    """The database plus its WAL and shared-memory files: what the state costs on disk."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="completed events to seed")
    parser.add_argument("--version", default="2.41", help="DHIS2 version the fake answers as")
    args = parser.parse_args()

    started = time.perf_counter()
    with FakeDhis2(version=args.version, now=T0 + dt.timedelta(days=2)) as fake:
        seed(fake, args.events)
        print(f"seeded {args.events} events in {time.perf_counter() - started:.1f} s")
        config = Dhis2Config.from_dict(
            {
                "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
                "lmis": {"data_element_id_scheme": "UID"},
                "programs": {"order": ORDER},
            }
        )
        with Dhis2Lmis(config) as lmis, tempfile.TemporaryDirectory() as tmp:
            lmis.session.server_info  # noqa: B018 - warm the session outside the timed part

            started = time.perf_counter()
            baseline = sum(1 for _ in lmis.fetch_completed_requisitions())
            fetch_s = time.perf_counter() - started

            def no_op(requisition: Requisition, /, *, is_update: bool) -> None:
                return None

            path = Path(tmp) / "state.sqlite"
            with SqliteStateStore(path) as state:
                runner = SyncRunner(lmis, state, on_requisition=no_op, notify=False)
                started = time.perf_counter()
                first = runner.run_once(("order",))
                sync_s = time.perf_counter() - started
                size = state_size(path)

                fake.clear_requests()
                started = time.perf_counter()
                second = runner.run_once(("order",))
                second_s = time.perf_counter() - started
                requests = Counter(r.path for r in fake.requests)

    print(
        f"fetch only (baseline): {baseline} events in {fetch_s:.2f} s, "
        f"{baseline / fetch_s:,.0f} events/s"
    )
    print(
        f"first run_once:        {first.handled} handled in {sync_s:.2f} s, "
        f"{first.handled / sync_s:,.0f} events/s ({sync_s / fetch_s:.2f}x the fetch alone)"
    )
    print(
        f"state file:            {size / 1024:,.0f} KiB ({size / max(first.handled, 1):.0f} "
        "bytes per event)"
    )
    total = sum(requests.values())
    verdict = "ok" if total <= 2 else "ABOVE TARGET"
    print(
        f"second run_once:       {second.handled} handled, {second.duplicates_skipped} "
        f"duplicates skipped in {second_s * 1000:.0f} ms; {total} requests for 1 program "
        f"(target <= 2: {verdict}): {dict(requests)}"
    )


if __name__ == "__main__":
    main()
