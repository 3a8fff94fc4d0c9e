"""Run every benchmark in benchmarks/ and print one table of ratios and memory against targets.

Run: ``python benchmarks/run_all.py`` (small sizes, about a minute), ``--full`` (each
benchmark's own default sizes, the numbers quoted in docs), ``--only bench_push`` to run one.

Each ``bench_*.py`` runs as its own subprocess (so one's memory never shows in another's peak),
with the current interpreter. Its printed lines are parsed into rows: metric, value, target and
a verdict. A benchmark this script does not know yet still appears: every line it prints that
names a target becomes a row. Times are machine-dependent: the ratios against a baseline from
the same run are the figures to compare, and nothing here fails a build; the exit status is 1
only when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Small sizes: enough pages and chunks to exercise the code paths, quick on a 2-core box.
SMALL_ARGS: dict[str, tuple[str, ...]] = {
    "bench_fetch": ("--events", "20000", "--page-size", "1000", "--repeat", "2"),
    "bench_parallel": ("--events", "12000"),
    "bench_push": ("--values", "20000", "--chunk", "5000", "--repeat", "1"),
    "bench_resolve": ("--count", "1000"),
    "bench_sync": ("--events", "2000"),
    "bench_reports": ("--facilities", "200", "--items", "50", "--batch-size", "25"),
}


@dataclass(frozen=True)
class Row:
    """One figure of one benchmark."""

    benchmark: str
    metric: str
    value: str
    target: str
    verdict: str


def _number(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text, re.M)
    return float(match.group(1).replace(",", "")) if match else None


def _at_most(value: float | None, limit: float) -> str:
    if value is None:
        return "?"
    return "ok" if value <= limit else "ABOVE TARGET"


def parse_fetch(out: str) -> list[Row]:
    ratio = _number(r"^ratio library / bare\s+([\d.]+)", out)
    growth = _number(r"^growth\s+(-?[\d.]+) MB", out)
    peak = _number(r"^peak memory at\s+[\d,]+\s+([\d.]+) MB\s*$", out)
    stand_in = _number(r"^stand-in ratio library / bare\s+([\d.]+)", out)
    return [
        Row("fetch", "iter_events time / bare requests loop", _fmt(ratio, "x"), "<= 1.3x",
            _at_most(ratio, 1.3)),
        Row("fetch", "same, against FakeDhis2 (offset cost)", _fmt(stand_in, "x"), "<= 1.5x",
            _at_most(stand_in, 1.5)),
        Row("fetch", "peak memory growth, 10k events -> all", _fmt(growth, " MB"), "<= 10 MB",
            _at_most(growth, 10.0)),
        Row("fetch", "peak memory, first 10k events", _fmt(peak, " MB"), "-", "info"),
    ]  # fmt: skip


def parse_parallel(out: str) -> list[Row]:
    one = _number(r"^ratio workers=1 / bare\s+([\d.]+)", out)
    many = _number(r"^ratio workers=(?!1 )\d+ / bare\s+([\d.]+)", out)
    return [
        Row("parallel", "workers=1 time / bare loop, 100 ms pages", _fmt(one, "x"), "<= 1.1x",
            _at_most(one, 1.1)),
        Row("parallel", "workers=4 time / bare loop, 100 ms pages", _fmt(many, "x"), "<= 0.35x",
            _at_most(many, 0.35)),
    ]  # fmt: skip


def parse_push(out: str) -> list[Row]:
    ratio = _number(r"^ratio library / bare\s+([\d.]+)", out)
    memory = _number(r"^library peak memory .*\(([\d.]+)x payload\)", out)
    peak = _number(r"^library peak memory\s+([\d.]+) MB", out)
    return [
        Row("push", "build + push time / bare requests.post", _fmt(ratio, "x"), "<= 1.2x",
            _at_most(ratio, 1.2)),
        Row("push", "peak memory / JSON payload", _fmt(memory, "x"), "<= 2x",
            _at_most(memory, 2.0)),
        Row("push", "peak memory", _fmt(peak, " MB"), "-", "info"),
    ]  # fmt: skip


def parse_resolve(out: str) -> list[Row]:
    minimum = _number(r"^theoretical minimum requests: (\d+)", out)
    first = _number(r"^first resolution: (\d+) requests", out)
    second = _number(r"second resolution: (\d+) requests", out)
    verdict = "?" if first is None or minimum is None else ("ok" if first <= minimum else "ABOVE")
    return [
        Row("resolve", "requests, first resolution", _fmt(first), f"= {_fmt(minimum)} (minimum)",
            verdict),
        Row("resolve", "requests, cached resolution", _fmt(second), "0", _at_most(second, 0)),
    ]  # fmt: skip


def parse_sync(out: str) -> list[Row]:
    ratio = _number(r"\(([\d.]+)x the fetch alone\)", out)
    per_event = _number(r"^state file:.*\(([\d,]+) bytes per event\)", out)
    requests = _number(r"; (\d+) requests for 1 program", out)
    return [
        Row("sync", "first run_once time / fetch alone", _fmt(ratio, "x"), "-", "info"),
        Row("sync", "state file per event", _fmt(per_event, " B"), "-", "info"),
        Row("sync", "requests of an idle run", _fmt(requests), "<= 2", _at_most(requests, 2)),
    ]


def parse_reports(out: str) -> list[Row]:
    time_ratio = _number(r"^batched / one request: time ([\d.]+)x", out)
    memory_ratio = _number(r"peak memory ([\d.]+)x\s*$", out)
    batched = _number(r"^batched\s+(\d+)\s", out)
    return [
        Row("reports", "batched / one request: time", _fmt(time_ratio, "x"), "-", "info"),
        # batching exists to keep each response, and so the memory, bounded
        Row("reports", "batched / one request: peak memory", _fmt(memory_ratio, "x"), "< 1x",
            "?" if memory_ratio is None else ("ok" if memory_ratio < 1 else "ABOVE TARGET")),
        Row("reports", "requests, batched read", _fmt(batched), "-", "info"),
    ]  # fmt: skip


def parse_generic(name: str, out: str) -> list[Row]:
    """Any line naming a target: the text before it, and the target itself."""
    rows = []
    for line in out.splitlines():
        match = re.search(r"(.*?)\btarget\b[:\s]*(.*)", line)
        if match:
            rows.append(Row(name, " ".join(match.group(1).split())[:60], "", match.group(2), ""))
    return rows or [Row(name, "(no line names a target)", "", "", "info")]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "?"
    if not unit or unit == " B":  # counts and bytes are whole numbers
        return f"{value:.0f}{unit}"
    return f"{value:.2f}{unit}"


PARSERS: dict[str, Callable[[str], list[Row]]] = {
    "bench_fetch": parse_fetch,
    "bench_parallel": parse_parallel,
    "bench_push": parse_push,
    "bench_resolve": parse_resolve,
    "bench_sync": parse_sync,
    "bench_reports": parse_reports,
}


def run_one(path: Path, *, full: bool, timeout: float) -> tuple[list[Row], str, float]:
    """Run one benchmark; its rows, its raw output (for --verbose) and its wall time."""
    name = path.stem
    args = () if full else SMALL_ARGS.get(name, ())
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE.parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        elapsed = time.perf_counter() - started
        return [Row(name.removeprefix("bench_"), "timed out", "", "", "FAILED")], "", elapsed
    elapsed = time.perf_counter() - started
    out = done.stdout
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            [Row(name.removeprefix("bench_"), f"crashed: {last[:70]}", "", "", "FAILED")],
            (out + done.stderr),
            elapsed,
        )
    parser = PARSERS.get(name)
    rows = parser(out) if parser else parse_generic(name.removeprefix("bench_"), out)
    return rows, out, elapsed


def render(rows: Sequence[Row]) -> str:
    header = Row("benchmark", "metric", "value", "target", "verdict")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in Row.__dataclass_fields__]
    lines = []
    for n, row in enumerate(table):
        cells = [
            getattr(row, f).ljust(w) for f, w in zip(Row.__dataclass_fields__, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each benchmark's default sizes")
    parser.add_argument("--only", action="append", default=[], help="e.g. bench_push (repeat)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per benchmark")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print raw output")
    args = parser.parse_args(argv)

    paths = sorted(p for p in HERE.glob("bench_*.py") if not args.only or p.stem in args.only)
    if not paths:
        print("no benchmark matched", file=sys.stderr)
        return 2
    rows: list[Row] = []
    failed = False
    for path in paths:
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        found, out, elapsed = run_one(path, full=args.full, timeout=args.timeout)
        print(f"  done in {elapsed:.1f} s", file=sys.stderr, flush=True)
        if args.verbose:
            print(f"--- {path.name}\n{out.rstrip()}\n", file=sys.stderr)
        failed |= any(r.verdict == "FAILED" for r in found)
        rows.extend(found)
    sizes = (
        "full sizes"
        if args.full
        else "small sizes: start-up weighs on the ratios; --full for the figures that count"
    )
    print(f"dhis2-lmis benchmarks, {sizes}, Python {sys.version.split()[0]}")
    print(render(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
