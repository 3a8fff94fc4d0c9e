"""The ``dhis2-lmis`` command: a thin argparse layer over :class:`~dhis2_lmis.client.Dhis2Lmis`.

Conventions every subcommand follows (STYLE.md, "CLI"):

* stdout carries results only (tables, JSON lines, CSV, summaries); progress, logs, warnings
  and errors go to stderr, so ``dhis2-lmis pull order --format jsonl > orders.jsonl`` is clean.
* Exit codes: 0 success; 1 the command ran but some records failed or had problems; 2 usage,
  configuration, authentication or connection failure (argparse also uses 2); 130 on Ctrl-C.
* :func:`main` catches :class:`~dhis2_lmis.errors.Dhis2Error` once and prints one line; the
  traceback only with ``-v``.
* Secrets are never flag values (they would leak into ``ps`` and shell history): they come from
  the configuration file or the environment variables it names.
* This is the only module that configures logging: one stderr handler on the ``dhis2_lmis``
  logger for the duration of :func:`main`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, TypeVar

from dhis2_lmis import __version__
from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.periods import PeriodError
from dhis2_lmis.errors import (
    ConfigError,
    Dhis2Error,
    ImportFailedError,
    UnknownReferenceError,
)
from dhis2_lmis.lmis.checks import PreflightError
from dhis2_lmis.lmis.datavalues import InvalidValueError
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Event,
    RecordProblem,
    Requisition,
    StockLevel,
    StockReport,
    StockTransaction,
)
from dhis2_lmis.lmis.references import load_customers, load_items, load_stores
from dhis2_lmis.lmis.stock import StockReceipt
from dhis2_lmis.run.state import SqliteStateStore
from dhis2_lmis.run.sync import SyncProgram, SyncRunner

if TYPE_CHECKING:  # pragma: no cover - demo.py starts servers; import it only when needed
    from dhis2_lmis.run.demo import PackingList

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "main"]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_PROG = "dhis2-lmis"
_DEFAULT_CONFIG = "dhis2-lmis.toml"
_CONFIG_ENV = "DHIS2_LMIS_CONFIG"
# errors about the data, not about being able to run at all
_DATA_ERRORS = (ImportFailedError, InvalidValueError, PreflightError, UnknownReferenceError)

Format = Literal["table", "jsonl", "csv"]
Row = dict[str, str]
_T = TypeVar("_T")


class _UsageError(Exception):
    """The command line or a file it names cannot be used; exit code 2, one line on stderr."""


# -- parser ----------------------------------------------------------------------------------------


def _epilog(*examples: str) -> str:
    return "Example:\n" + "\n".join(f"  {e}" for e in examples)


def _common_options(*, in_subcommand: bool) -> argparse.ArgumentParser:
    """Global options, accepted before or after the subcommand name."""
    default: object = argparse.SUPPRESS if in_subcommand else None
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help=f"configuration file (default: ${_CONFIG_ENV}, else ./{_DEFAULT_CONFIG})",
    )
    group.add_argument(
        "--items", metavar="FILE", default=default, help="mSupply items (CSV or JSON)"
    )
    group.add_argument(
        "--stores", metavar="FILE", default=default, help="mSupply stores (CSV or JSON)"
    )
    group.add_argument(
        "--customers", metavar="FILE", default=default, help="mSupply customers (CSV or JSON)"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if in_subcommand else 0,
        help="more log output on stderr (-vv for every HTTP request); tracebacks on errors",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if in_subcommand else False,
        help="only errors on stderr",
    )
    return parser


def _since(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date or time: {text!r} (e.g. 2026-11-01 or 2026-11-01T08:00)"
        ) from None


def _programs(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    wrong = [p for p in names if p not in ("order", "receipt")]
    if wrong or not names:
        raise argparse.ArgumentTypeError(
            f"programs must be order and/or receipt, comma-separated, not {text!r}"
        )
    return names


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "jsonl", "csv"),
        default="table",
        help="table for people (default); jsonl or csv for programs (streamed)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole ``dhis2-lmis`` parser (exposed for documentation tools and tests)."""
    fmt = argparse.RawDescriptionHelpFormatter
    common = _common_options(in_subcommand=True)
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="The DHIS2 side of an mSupply-style LMIS bridge: pull requisitions and "
        "receipts, push stock, run the scheduled sync.",
        epilog=_epilog(
            f"{_PROG} demo                     # the whole job against an offline DHIS2",
            f"{_PROG} --config site.toml test-connection",
            f"{_PROG} pull order --since 2026-11-01 --format jsonl > orders.jsonl",
        )
        + "\n\nExit codes: 0 ok, 1 some records failed or had problems, 2 usage, "
        "configuration,\nauthentication or connection failure, 130 interrupted.",
        formatter_class=fmt,
        parents=[_common_options(in_subcommand=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_epilog(*examples),
            formatter_class=fmt,
            parents=[common],
        )

    demo = add(
        "demo",
        "Run the daily job against an offline demo DHIS2 (no network, no configuration).",
        f"{_PROG} demo",
        f"{_PROG} demo --version 2.39",
        f"{_PROG} demo --layout category_option_combo",
    )
    demo.add_argument(
        "--version",
        dest="dhis2_version",
        default="2.41",
        metavar="X.Y",
        help="the DHIS2 version the demo server answers as (2.36-2.43; default 2.41)",
    )
    demo.add_argument(
        "--layout",
        choices=("category_option_combo", "template"),
        default=None,
        help="push stock on hand and received quantity through a data set of this layout "
        "(docs/layouts.md) and read them back",
    )
    add(
        "test-connection",
        "Check the server URL and credentials (mSupply's 'Test connection').",
        f"{_PROG} --config site.toml test-connection",
    )
    add(
        "check",
        "Validate the configuration, the connection and the server setup (programs, stages, "
        "data elements, data set, item and org unit references).",
        f"{_PROG} --config site.toml check",
    )
    pull = add(
        "pull",
        "Read one program: requisitions (order), consignment receipts (receipt), stock "
        "transactions (str); or the data set's stock-on-hand reports (stock-reports).",
        f"{_PROG} pull order --since 2026-11-01",
        f"{_PROG} pull receipt --org-unit DiszpKrYNg8 --format csv > receipts.csv",
        f"{_PROG} pull str --raw --format jsonl",
        f"{_PROG} pull stock-reports --period 202611 --org-unit DiszpKrYNg8",
    )
    pull.add_argument(
        "what",
        choices=("order", "receipt", "str", "stock-reports"),
        help="which program to read, or stock-reports: the [lmis] data_set's values",
    )
    pull.add_argument(
        "--since", type=_since, metavar="ISO", help="only events updated after this time"
    )
    pull.add_argument("--org-unit", metavar="UID", help="only this org unit")
    pull.add_argument("--raw", action="store_true", help="print the raw events, not records")
    pull.add_argument(
        "--period",
        metavar="P",
        help="stock-reports: the period id (202611) or a date in it (2026-11-30)",
    )
    pull.add_argument(
        "--children",
        action="store_true",
        help="stock-reports: include the org units below --org-unit",
    )
    _add_format(pull)
    soh = add(
        "stock-on-hand",
        "The latest stock on hand per facility and item, from the STR program.",
        f"{_PROG} stock-on-hand --org-unit DiszpKrYNg8",
        f"{_PROG} stock-on-hand --format csv > soh.csv",
    )
    soh.add_argument("--org-unit", metavar="UID", help="only this org unit")
    _add_format(soh)
    push = add(
        "push-values",
        "Push aggregate data values from a CSV file to the configured data set.",
        f"{_PROG} push-values soh.csv --period 202611 --org-unit DiszpKrYNg8 --dry-run",
        "",
        "CSV columns: data_element, value; optional category_option_combo,",
        "attribute_option_combo, org_unit, period, comment (a row's org_unit/period",
        "override --org-unit/--period). Bad rows are reported by file:line and the others",
        "pushed; with --preflight nothing is pushed while any row would be lost.",
    )
    push.add_argument("file", metavar="FILE.csv", help="the values to push")
    push.add_argument("--period", metavar="P", help="period id (202611) or a date (2026-11-30)")
    push.add_argument("--org-unit", metavar="OU", help="org unit of rows that name none")
    push.add_argument(
        "--dry-run", action="store_true", help="let DHIS2 validate without saving anything"
    )
    push.add_argument(
        "--preflight",
        action="store_true",
        help="check every row against the data set first (value types, option sets, option "
        "combos, org units, open periods, zeros DHIS2 would drop) and send nothing if any "
        "row would be lost",
    )
    sync = add(
        "sync",
        "The scheduled job: hand completed requisitions and receipts over once each (as JSON "
        "lines on stdout) and push packed stock to the STR program.",
        f"{_PROG} --items items.csv --customers customers.csv sync --once >> handed-over.jsonl",
        f"{_PROG} sync --forever --programs order --packing-list packing.csv",
    )
    when = sync.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one run, then exit (default)")
    when.add_argument(
        "--forever", action="store_true", help="run every [sync] interval until Ctrl-C"
    )
    sync.add_argument(
        "--programs",
        type=_programs,
        default=("order", "receipt"),
        metavar="LIST",
        help="order, receipt or order,receipt (default)",
    )
    sync.add_argument(
        "--packing-list",
        metavar="FILE.csv",
        help="what each consignment held (columns consignment, item_code, quantity): receipts "
        "of these consignments are pushed to the STR program",
    )
    return parser


# -- entry point -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dhis2-lmis`` command; returns the exit code (never raises ``SystemExit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    verbosity: int = args.verbose
    logger = logging.getLogger("dhis2_lmis")
    previous_level = logger.level
    handler = _configure_logging(logger, verbosity, quiet=bool(args.quiet))
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _UsageError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Dhis2Error as exc:
        if verbosity:
            traceback.print_exc(file=sys.stderr)
        print(f"{_PROG}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS if isinstance(exc, _DATA_ERRORS) else EXIT_USAGE
    except BrokenPipeError:  # `dhis2-lmis pull ... | head`: the reader is done
        _silence_stdout()
        return EXIT_OK
    finally:  # main may run many times in one process (tests, notebooks): undo it all
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def _one_line(exc: Dhis2Error) -> str:
    if isinstance(exc, ConfigError):  # one problem per line: the reasons contain "; " too
        return str(exc)
    return " ".join(str(exc).split())


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _configure_logging(logger: logging.Logger, verbosity: int, *, quiet: bool) -> logging.Handler:
    """Send the library's log records to stderr: WARNING by default, -v INFO, -vv DEBUG."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbosity, 1)]
    if verbosity >= 2:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.setLevel(level)
    logger.addHandler(handler)
    return handler


# -- configuration and the facade ------------------------------------------------------------------


def _load_config(args: argparse.Namespace) -> Dhis2Config:
    """``--config``, else ``$DHIS2_LMIS_CONFIG``, else ``./dhis2-lmis.toml``.

    Loading goes through :meth:`Dhis2Config.from_env` with the chosen file, so the
    ``DHIS2_LMIS_<SECTION>__<KEY>`` overrides apply whichever way the file was named.
    """
    environ = dict(os.environ)
    path: str | None = args.config or environ.get(_CONFIG_ENV) or None
    if path is None and Path(_DEFAULT_CONFIG).is_file():
        path = _DEFAULT_CONFIG
    if path is None:
        if environ.get("DHIS2_URL"):
            return Dhis2Config.from_env(environ)
        raise _UsageError(
            f"no configuration found: pass --config PATH, set {_CONFIG_ENV}, or create "
            f"./{_DEFAULT_CONFIG} (see docs/configuration.md; `{_PROG} demo` needs none)"
        )
    if not Path(path).is_file():
        raise _UsageError(f"configuration file {path} does not exist")
    environ[_CONFIG_ENV] = path
    return Dhis2Config.from_env(environ)


def _open_lmis(args: argparse.Namespace, config: Dhis2Config | None = None) -> Dhis2Lmis:
    config = config or _load_config(args)
    items = load_items(args.items) if args.items else ()
    stores = load_stores(args.stores) if args.stores else ()
    customers = load_customers(args.customers) if args.customers else ()
    return Dhis2Lmis(config, items=items, stores=stores, customers=customers)


# -- commands --------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    # the fake server is only needed here: keep it out of every other command's start-up
    from dhis2_lmis.run.demo import run_demo  # noqa: PLC0415

    print(f"Starting an offline DHIS2 {args.dhis2_version} on 127.0.0.1 ...", file=sys.stderr)
    summary = run_demo(version=args.dhis2_version, layout=args.layout)
    print(summary)
    return EXIT_OK if summary.ok else EXIT_PROBLEMS


def _cmd_test_connection(args: argparse.Namespace) -> int:
    with _open_lmis(args) as lmis:
        check = lmis.test_connection()
    if check.ok:
        print(check.message)
        return EXIT_OK
    print(f"{_PROG}: {check.message}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_check(args: argparse.Namespace) -> int:
    config = _load_config(args)  # raises ConfigError listing every problem
    source = args.config or os.environ.get(_CONFIG_ENV) or _DEFAULT_CONFIG
    print(f"configuration: OK ({source})")
    with _open_lmis(args, config) as lmis:
        check = lmis.test_connection()
        if not check.ok:
            print(f"{_PROG}: {check.message}", file=sys.stderr)
            return EXIT_USAGE
        print(f"connection: {check.message}")
        findings = lmis.validate_setup()
    for finding in findings:
        print(finding)
    serious = [f for f in findings if f.severity in ("error", "warning")]
    if not findings:
        print("setup: OK (programs, data elements, data set and references match the server)")
    elif not serious:
        print("setup: OK (notes above only)")
    else:
        print(
            f"{_PROG}: {len(serious)} setup problem{'s' if len(serious) != 1 else ''} found",
            file=sys.stderr,
        )
    return EXIT_PROBLEMS if serious else EXIT_OK


def _cmd_pull(args: argparse.Namespace) -> int:
    what: str = args.what
    with _open_lmis(args) as lmis:
        if what == "stock-reports":
            return _pull_stock_reports(lmis, args)
        program: Literal["order", "receipt", "str"] = (
            "order" if what == "order" else "receipt" if what == "receipt" else "str"
        )
        since, org_unit = args.since, args.org_unit
        if args.raw:
            events = lmis.pull(program, since=since, org_unit=org_unit)
            return _emit(_progress(events), _event_rows, args.format)
        if program == "order":
            requisitions = lmis.fetch_completed_requisitions(since=since, org_unit=org_unit)
            return _emit(_progress(requisitions), _requisition_rows, args.format)
        if program == "receipt":
            receipts = lmis.fetch_completed_receipts(since=since, org_unit=org_unit)
            return _emit(_progress(receipts), _receipt_rows, args.format)
        transactions = lmis.fetch_stock_transactions(since=since, org_unit=org_unit)
        return _emit(_progress(transactions), _transaction_rows, args.format)


def _pull_stock_reports(lmis: Dhis2Lmis, args: argparse.Namespace) -> int:
    if not args.period:
        raise _UsageError("pull stock-reports needs --period (e.g. --period 202611)")
    try:
        reports = lmis.fetch_stock_reports(
            _period_arg(args.period),
            args.org_unit,
            children=args.children,
            since=args.since,
        )
        return _emit(_progress(reports), _stock_report_rows, args.format)
    except PeriodError as exc:
        raise _UsageError(f"period {args.period!r}: {exc}") from exc


def _cmd_stock_on_hand(args: argparse.Namespace) -> int:
    with _open_lmis(args) as lmis:
        levels = lmis.fetch_stock_on_hand(org_unit=args.org_unit)
        return _emit(_progress(levels), _level_rows, args.format)


def _cmd_push_values(args: argparse.Namespace) -> int:
    rows = _read_values_csv(args.file)
    with _open_lmis(args) as lmis:
        period = args.period or next((r["period"] for _, r in rows if r.get("period")), None)
        if not period:
            raise _UsageError(f"{args.file}: no period: pass --period or fill the period column")
        try:
            builder = lmis.data_value_set(period=_period_arg(period), org_unit=args.org_unit)
        except PeriodError as exc:
            raise _UsageError(f"period {period!r}: {exc}") from exc
        builder.add_rows((row for _, row in rows), names=lambda i: f"{args.file}:{rows[i][0]}")
        if not len(builder) and not builder.rejected:
            print(f"{_PROG}: {args.file}: no values to push", file=sys.stderr)
            return EXIT_PROBLEMS
        if not args.preflight:  # the preflight lists the refused rows with everything else
            for rejected in builder.rejected:
                print(f"{_PROG}: {rejected} (row not pushed)", file=sys.stderr)
            if not len(builder):
                return EXIT_PROBLEMS
        try:
            summary = lmis.push_data_values(builder, dry_run=args.dry_run, preflight=args.preflight)
        except PreflightError as exc:  # one problem a line: there may be many
            print(f"{_PROG}: {args.file}: nothing was sent; the preflight found:", file=sys.stderr)
            for finding in exc.findings:
                print(f"  - {finding}", file=sys.stderr)
            return EXIT_PROBLEMS
        except ImportFailedError as exc:
            print(exc.summary)
            print(f"{_PROG}: {_one_line(exc)}", file=sys.stderr)
            return EXIT_PROBLEMS
    print(summary)
    return EXIT_OK if summary.ok and not builder.rejected else EXIT_PROBLEMS


def _period_arg(text: str) -> date | str:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text


def _read_values_csv(path: str) -> list[tuple[int, Row]]:
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or ()]
            missing = [c for c in ("data_element", "value") if c not in header]
            if missing:
                raise _UsageError(
                    f"{path}: missing column(s) {', '.join(missing)} (the header row needs "
                    "data_element and value)"
                )
            return [
                (
                    number,
                    {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()},
                )
                for number, row in enumerate(reader, start=2)
            ]
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _UsageError(f"{path} is not a readable CSV file: {exc}") from exc


def _cmd_sync(args: argparse.Namespace) -> int:
    from dhis2_lmis.run.demo import stock_receipts_for  # noqa: PLC0415 - as in _cmd_demo

    config = _load_config(args)
    packing: PackingList | None = (
        _read_packing_list(args.packing_list) if args.packing_list else None
    )
    programs: tuple[SyncProgram, ...] = tuple(
        "order" if p == "order" else "receipt" for p in args.programs
    )

    def on_requisition(requisition: Requisition, /, *, is_update: bool) -> None:
        for row in _requisition_rows(requisition):
            _write_json_line({"program": "order", "is_update": is_update, **row})

    def on_receipt(
        receipt: ConsignmentReceipt, /, *, is_update: bool
    ) -> Iterable[StockReceipt] | None:
        for row in _receipt_rows(receipt):
            _write_json_line({"program": "receipt", "is_update": is_update, **row})
        if packing is None:
            return None
        stock = stock_receipts_for(receipt, packing)
        if not stock:
            log.warning("consignment %s is not on the packing list", receipt.consignment_number)
        return stock

    with SqliteStateStore(config.sync.state) as state:
        lmis = _open_lmis(args, config)
        lmis.on_connection = state.set_last_connection
        with lmis:
            runner = SyncRunner(lmis, state, on_requisition=on_requisition, on_receipt=on_receipt)
            if args.forever:
                reports = runner.run_forever(programs=programs)
            else:
                reports = [runner.run_once(programs)]
    for report in reports:
        print(report, file=sys.stderr)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_PROBLEMS


def _read_packing_list(path: str) -> PackingList:
    lists: dict[str, list[tuple[str, Decimal]]] = {}
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                cells = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                consignment, item = cells.get("consignment", ""), cells.get("item_code", "")
                try:
                    quantity = Decimal(cells.get("quantity", ""))
                except ArithmeticError:
                    quantity = Decimal("NaN")
                if not consignment or not item or not quantity.is_finite():
                    raise _UsageError(
                        f"{path}:{number}: needs consignment, item_code and a numeric quantity"
                    )
                lists.setdefault(consignment, []).append((item, quantity))
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _UsageError(f"{path} is not a readable CSV file: {exc}") from exc
    return {k: tuple(v) for k, v in lists.items()}


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _cmd_demo,
    "test-connection": _cmd_test_connection,
    "check": _cmd_check,
    "pull": _cmd_pull,
    "stock-on-hand": _cmd_stock_on_hand,
    "push-values": _cmd_push_values,
    "sync": _cmd_sync,
}


# -- output ----------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _problems(problems: Iterable[RecordProblem]) -> str:
    return "; ".join(str(p) for p in problems)


def _requisition_rows(r: Requisition) -> Iterator[Row]:
    head = {
        "event": r.event.uid,
        "org_unit": _text(r.org_unit),
        "customer": r.customer.code if r.customer else "",
        "store": r.store.code if r.store else "",
        "occurred_at": _text(r.occurred_at),
        "completed_at": _text(r.completed_at),
        "updated_at": _text(r.updated_at),
    }
    problems = _problems(r.problems)
    for line in r.lines or (None,):
        yield {
            **head,
            "data_element": line.data_element if line else "",
            "item_code": line.item.code if line and line.item else "",
            "item_name": line.item.name if line and line.item else "",
            "quantity": _text(line.quantity) if line else "",
            "raw_value": _text(line.raw_value) if line else "",
            "problems": problems,
        }


def _receipt_rows(c: ConsignmentReceipt) -> Iterator[Row]:
    yield {
        "event": c.event.uid,
        "org_unit": _text(c.org_unit),
        "customer": c.customer.code if c.customer else "",
        "store": c.store.code if c.store else "",
        "consignment_number": _text(c.consignment_number),
        "completed_at": _text(c.completed_at),
        "updated_at": _text(c.updated_at),
        "values": json.dumps(dict(c.values), sort_keys=True),
        "problems": _problems(c.problems),
    }


def _transaction_rows(t: StockTransaction) -> Iterator[Row]:
    yield {
        "event": t.event.uid,
        "org_unit": _text(t.org_unit),
        "tracked_entity": _text(t.tracked_entity),
        "item_code": _text(t.item_code),
        "occurred_at": _text(t.occurred_at),
        "stock_on_hand": _text(t.stock_on_hand),
        "received_quantity": _text(t.received_quantity),
        "deleted": str(t.event.deleted).lower(),
        "problems": _problems(t.problems),
    }


def _level_rows(level: StockLevel) -> Iterator[Row]:
    yield {
        "org_unit": level.org_unit,
        "item_code": _text(level.item_code),
        "stock_on_hand": _text(level.stock_on_hand),
        "as_of": _text(level.as_of),
        "event": level.event.uid,
        "problems": "",
    }


def _event_rows(e: Event) -> Iterator[Row]:
    yield {
        "event": e.uid,
        "program": _text(e.program),
        "program_stage": _text(e.program_stage),
        "org_unit": _text(e.org_unit),
        "status": _text(e.status),
        "occurred_at": _text(e.occurred_at),
        "updated_at": _text(e.updated_at),
        "tracked_entity": _text(e.tracked_entity),
        "deleted": str(e.deleted).lower(),
        "data_values": json.dumps(e.values(), sort_keys=True),
        "problems": _problems(e.problems),
    }


def _stock_report_rows(report: StockReport) -> Iterator[Row]:
    head = {
        "org_unit": report.org_unit,
        "customer": report.customer.code if report.customer else "",
        "store": report.store.code if report.store else "",
        "period": report.period,
        "complete_date": _text(report.complete_date),
    }
    problems = _problems(report.problems)
    for line in report.lines or (None,):
        yield {
            **head,
            "data_element": line.data_element if line else "",
            "category_option_combo": _text(line.category_option_combo) if line else "",
            "attribute_option_combo": _text(line.attribute_option_combo) if line else "",
            "item_code": line.item.code if line and line.item else "",
            "item_name": line.item.name if line and line.item else "",
            "measure": _text(line.measure) if line else "",
            "value": _text(line.value) if line else "",
            "raw_value": _text(line.raw_value) if line else "",
            "updated_at": _text(line.updated_at) if line else "",
            "problems": problems,
        }


def _emit(records: Iterable[_T], to_rows: Callable[[_T], Iterable[Row]], fmt: Format) -> int:
    """Print records as rows; exit 1 when some had problems (they are printed regardless)."""
    with_problems = 0

    def rows() -> Iterator[Row]:
        nonlocal with_problems
        for record in records:
            record_rows = list(to_rows(record))
            if any(r.get("problems") for r in record_rows):
                with_problems += 1
            yield from record_rows

    out = sys.stdout
    if fmt == "jsonl":
        for row in rows():
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer: csv.DictWriter[str] | None = None
        for row in rows():
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow(row)
    else:
        _print_table(list(rows()), out)
    out.flush()
    if with_problems:
        print(
            f"{_PROG}: {with_problems} record{'s' if with_problems != 1 else ''} had problems "
            "(see the problems column)",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    return EXIT_OK


def _print_table(rows: Sequence[Row], out: IO[str], max_width: int = 40) -> None:
    if not rows:
        print("(no records)", file=sys.stderr)
        return
    columns = [c for c in rows[0] if c == "problems" or any(r.get(c) for r in rows)]
    if not any(r.get("problems") for r in rows):
        columns = [c for c in columns if c != "problems"]

    def cell(value: str) -> str:
        value = value.replace("\n", " ")
        return value if len(value) <= max_width else value[: max_width - 1] + "…"

    widths = {c: max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns}
    out.write("  ".join(c.ljust(widths[c]) for c in columns).rstrip() + "\n")
    for row in rows:
        out.write("  ".join(cell(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())
        out.write("\n")


def _write_json_line(row: Mapping[str, object]) -> None:
    sys.stdout.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _progress(records: Iterable[_T], every: int = 100) -> Iterator[_T]:
    """Pass records through, counting them on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield from records
        return
    try:
        from tqdm import tqdm  # noqa: PLC0415 - optional ("notebook" extra)
    except ImportError:
        pass
    else:
        yield from tqdm(records, file=sys.stderr, unit=" records", leave=False)
        return
    count = 0
    for count, record in enumerate(records, start=1):
        if count == 1 or count % every == 0:
            sys.stderr.write(f"\r{count} records ...")
            sys.stderr.flush()
        yield record
    if count:
        sys.stderr.write(f"\r{count} records     \n")
        sys.stderr.flush()
