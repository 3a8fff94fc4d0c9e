"""The ``dhis2-lmis`` command: a thin argparse layer over :class:`~dhis2_lmis.client.Dhis2Lmis`.

Conventions every subcommand follows (STYLE.md, "CLI"):

* stdout carries results only (tables, JSON lines, CSV, summaries); progress, logs, warnings
  and errors go to stderr, so ``dhis2-lmis pull order --format jsonl > orders.jsonl`` is clean.
* Exit codes: 0 success; 1 the command ran but some records failed or had problems; 2 usage,
  configuration, authentication or connection failure (argparse also uses 2); 130 on Ctrl-C or
  SIGTERM (with what was not done); 141 when the reader of stdout went away (``| head``).
  Never 0 when something was not done.
* No traceback, ever: :func:`main` turns every error into one readable message on stderr
  (configuration problems one per line); the traceback only with ``-v``.
* Only what is configured runs: a command that needs a setting the configuration lacks says so
  and exits 2 (:data:`_NEEDS`); ``check`` lists every such gap.
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
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from dhis2_lmis._version import __version__
from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.imports import ImportFailedError
from dhis2_lmis.dhis2.periods import PeriodError
from dhis2_lmis.errors import (
    ConfigError,
    Dhis2Error,
    PackingListError,
    RequestRejectedError,
    UnknownReferenceError,
)
from dhis2_lmis.lmis.checks import PreflightError
from dhis2_lmis.lmis.datavalues import InvalidValueError
from dhis2_lmis.lmis.models import ConsignmentReceipt, Requisition
from dhis2_lmis.lmis.references import load_customers, load_items, load_stores
from dhis2_lmis.lmis.stock import PackingList, StockReceipt, csv_header_problem
from dhis2_lmis.run._tabular import (
    EVENTS,
    RECEIPTS,
    REQUISITIONS,
    STOCK_LEVELS,
    STOCK_REPORTS,
    STOCK_TRANSACTIONS,
    Table,
)
from dhis2_lmis.run.state import SqliteStateStore
from dhis2_lmis.run.sync import RunReport, SyncProgram, SyncRunner

if TYPE_CHECKING:  # pragma: no cover - for annotations only
    from types import FrameType

__all__ = [
    "EXIT_CLOSED_OUTPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "main",
]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_CLOSED_OUTPUT = 141  # 128 + SIGPIPE, what a shell reports for `... | head`

_PROG = "dhis2-lmis"
_DEFAULT_CONFIG = "dhis2-lmis.toml"
_CONFIG_ENV = "DHIS2_LMIS_CONFIG"
# errors about the data, not about being able to run at all
_DATA_ERRORS = (ImportFailedError, InvalidValueError, PreflightError, UnknownReferenceError)
_SYNC_PROGRAMS: tuple[SyncProgram, ...] = ("order", "receipt")
_MAX_PROBLEMS_SHOWN = 10

# What each command needs beyond [dhis2], by setting; `check` inverts it to say which commands
# an unset setting would stop. Each setting is described once, in _SETTINGS.
_SETTINGS: dict[str, str] = {
    "programs.order": "the Order program UID",
    "programs.receipt": "the Receipt program UID",
    "programs.str": "the STR (Real-Time Stock) program UID",
    "lmis.data_set": "the stock-on-hand data set",
    "receipt.consignment_data_element": "the Receipt program's consignment number data element",
    "data_elements.stock_on_hand": "the data element table's stock-on-hand row: "
    "data_element, program_stage and attribute",
    "data_elements.received_quantity": "the data element table's received-quantity row: "
    "data_element, program_stage and attribute",
}
_NEEDS: dict[str, tuple[str, ...]] = {
    "pull order": ("programs.order",),
    "pull receipt": ("programs.receipt",),
    "pull str": ("programs.str",),
    "pull stock-reports": ("lmis.data_set",),
    "stock-on-hand": ("programs.str", "data_elements.stock_on_hand"),
    "push-values": ("lmis.data_set",),
    "sync (orders)": ("programs.order",),
    "sync (receipts)": ("programs.receipt",),
    "sync --packing-list": (
        "programs.receipt",
        "receipt.consignment_data_element",
        "programs.str",
        "data_elements.received_quantity",
    ),
}
# What an interrupt leaves undone, per command (sync says it from its run report).
_NOT_DONE: dict[str, str] = {
    "demo": "the demo did not finish",
    "test-connection": "the connection was not checked",
    "check": "the check did not finish",
    "pull": "the output is incomplete",
    "stock-on-hand": "the output is incomplete",
    "push-values": "the values may not all have reached DHIS2; run the same command again "
    "(pushing the same values twice is safe)",
    "sync": "the event in hand was not recorded and is handed over again next run; events not "
    "yet read wait for the next run",
}

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
        help="only errors on stderr (and an error e-mail that could not be sent)",
    )
    return parser


def _since(text: str) -> datetime:
    """A ``YYYY-MM-DD`` date or ``YYYY-MM-DDTHH:MM[:SS[.fff]]`` time, with an optional offset.

    Only those forms, on every Python: 3.11's ``datetime.fromisoformat`` also reads ``2026W10``
    and ``20261101``, which 3.10 refuses (the ``--period`` fix, ``_period_arg``, is the same).
    """
    bad = argparse.ArgumentTypeError(
        f"not an ISO date or time: {text!r} (e.g. 2026-11-01 or 2026-11-01T08:00)"
    )
    if not _ISO_TIME.fullmatch(text.strip()):
        raise bad
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad from None


_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{3}|\.\d{6})?)?(Z|[+-]\d{2}:\d{2})?)?"
)


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
            f"{_PROG} demo --serve             # keep it running, to try every command",
            f"{_PROG} --config site.toml test-connection",
            f"{_PROG} pull order --since 2026-11-01 --format jsonl > orders.jsonl",
        )
        + "\n\nExit codes: 0 all done, 1 some records failed or had problems, 2 usage, "
        "configuration,\nauthentication or connection failure, 130 interrupted (Ctrl-C, "
        "SIGTERM), 141 output\nclosed by its reader. Problems always go to stderr.",
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
        "Run the daily job against an offline demo DHIS2 (no network, no configuration); "
        "with --serve, keep that DHIS2 running and write the files to try every command.",
        f"{_PROG} demo",
        f"{_PROG} demo --dhis2-version 2.39",
        f"{_PROG} demo --serve --dir demo   # then follow the printed commands",
        f"{_PROG} demo --layout category_option_combo",
    )
    demo.add_argument(
        "--dhis2-version",
        default="2.41",
        metavar="X.Y",
        help="the DHIS2 version the demo server answers as (2.36 to 2.43; default 2.41)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="run the demo DHIS2 on 127.0.0.1 until Ctrl-C, with a ready configuration",
    )
    demo.add_argument(
        "--dir",
        metavar="DIR",
        help="--serve: write the files here (default: a new temporary folder)",
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
        "--since",
        type=_since,
        metavar="ISO",
        help="only events updated after this time (2026-11-01 or 2026-11-01T08:00[+02:00])",
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
        f"{_PROG} sync --forever --packing-list packing-list.csv",
        "",
        "A receipt whose consignment is not on the packing list is not marked handled: it",
        "fails, is listed in the error e-mail, and is tried again every run (docs/sync.md).",
    )
    when = sync.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one run, then exit (default)")
    when.add_argument(
        "--forever", action="store_true", help="run every [sync] interval until Ctrl-C"
    )
    sync.add_argument(
        "--programs",
        type=_programs,
        default=None,
        metavar="LIST",
        help="order, receipt or order,receipt (default: those set in [programs])",
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
    mail_logger = logger.getChild("run.notify")
    previous_level, previous_mail_level = logger.level, mail_logger.level
    handler = _configure_logging(logger, verbosity, quiet=bool(args.quiet))
    restore_sigterm = _sigterm_interrupts()
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _error(f"interrupted: {_NOT_DONE[args.command]}")
        return EXIT_INTERRUPTED
    except _UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except Dhis2Error as exc:
        if verbosity:
            traceback.print_exc(file=sys.stderr)
        _error(_message(exc))
        return EXIT_PROBLEMS if isinstance(exc, _DATA_ERRORS) else EXIT_USAGE
    except BrokenPipeError:  # `dhis2-lmis pull ... | head`: the reader is done, stop quietly
        _silence_stdout()
        return EXIT_CLOSED_OUTPUT
    except OSError as exc:  # a file or folder named on the command line
        if verbosity:
            traceback.print_exc(file=sys.stderr)
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return EXIT_USAGE
    except Exception as exc:  # the last line of defence: a message, never a bare traceback
        if verbosity:
            traceback.print_exc(file=sys.stderr)
        _error(
            f"unexpected error: {type(exc).__name__}: {exc} (run again with -v for the "
            "details, and please report it)"
        )
        return EXIT_PROBLEMS
    finally:  # main may run many times in one process (tests, notebooks): undo it all
        restore_sigterm()
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        mail_logger.setLevel(previous_mail_level)


def _error(text: str) -> None:
    print(f"{_PROG}: {text}", file=sys.stderr)


def _message(exc: Dhis2Error, what: str = "invalid configuration") -> str:
    """The error for stderr: configuration problems one per line (the reasons contain "; "
    themselves), key first; anything else on one line."""
    if isinstance(exc, ConfigError):
        parts = [str(p) for p in exc.problems]
        if len(parts) == 1:
            return f"{what}: {parts[0]}"
        shown = parts[:_MAX_PROBLEMS_SHOWN]
        more = len(parts) - len(shown)
        return (
            f"{what}:"
            + "".join(f"\n  {part}" for part in shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return " ".join(str(exc).split())


def _sigterm_interrupts() -> Callable[[], None]:
    """Make SIGTERM end a command as Ctrl-C does (exit 130, saying what was not done)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


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
    if quiet:  # an error e-mail that could not be sent is the warning a quiet cron job must
        # still show: otherwise the run's errors reach nobody
        logger.getChild("run.notify").setLevel(logging.WARNING)
    logger.addHandler(handler)
    return handler


# -- configuration and the facade ------------------------------------------------------------------


def _load_config(args: argparse.Namespace) -> Dhis2Config:
    """``--config``, else ``$DHIS2_LMIS_CONFIG``, else ``./dhis2-lmis.toml``.

    Loading goes through :meth:`Dhis2Config.from_env` with the chosen file, so the
    ``DHIS2_LMIS_<SECTION>__<KEY>`` overrides apply whichever way the file was named.
    """
    environ = dict(os.environ)
    path = _config_path(args)
    if path is None:
        if environ.get("DHIS2_URL"):
            return Dhis2Config.from_env(environ)
        raise _UsageError(
            f"no configuration found: pass --config PATH, set {_CONFIG_ENV}, or create "
            f"./{_DEFAULT_CONFIG} (see docs/configuration.md; `{_PROG} demo` needs none)"
        )
    if Path(path).is_dir():
        raise _UsageError(f"configuration file {path} is a folder: name the .toml file in it")
    if not Path(path).is_file():
        raise _UsageError(
            f"configuration file {path} does not exist (check the path, or run "
            f"`{_PROG} demo --serve` for a working example)"
        )
    environ[_CONFIG_ENV] = path
    return Dhis2Config.from_env(environ)


def _config_path(args: argparse.Namespace) -> str | None:
    """The configuration file to read; None when there is none (``DHIS2_*`` variables alone)."""
    path: str | None = args.config or os.environ.get(_CONFIG_ENV) or None
    if path is None and Path(_DEFAULT_CONFIG).is_file():
        path = _DEFAULT_CONFIG
    return path


def _config_source(args: argparse.Namespace) -> str:
    """Where the configuration came from, as messages name it."""
    return _config_path(args) or "the DHIS2_* environment"


def _is_set(config: Dhis2Config, setting: str) -> bool:
    """Whether ``setting`` (a key of :data:`_SETTINGS`) is configured well enough to use."""
    section, key = setting.split(".")
    value = getattr(getattr(config, section), key)
    if section == "data_elements":
        row = value
        return bool(row.active and row.data_element and row.program_stage and row.attribute)
    return bool(value)


def _require(config: Dhis2Config, args: argparse.Namespace, *needs: str) -> None:
    """Refuse to run (exit 2) when a need of :data:`_NEEDS` is not configured."""
    settings = [setting for need in needs for setting in _NEEDS[need]]
    unset = [s for s in dict.fromkeys(settings) if not _is_set(config, s)]
    if unset:
        what = "; ".join(f"{s} ({_SETTINGS[s]})" for s in unset)
        raise _UsageError(
            f"{' and '.join(needs)} needs {what}, which {_config_source(args)} does not set; "
            f"add {'it' if len(unset) == 1 else 'them'} (docs/configuration.md). "
            f"`{_PROG} check` lists every gap"
        )


def _open_lmis(
    args: argparse.Namespace,
    config: Dhis2Config | None = None,
    *,
    on_connection: Callable[[datetime, str], None] | None = None,
) -> Dhis2Lmis:
    config = config or _load_config(args)
    items = _references("--items", args.items, load_items)
    stores = _references("--stores", args.stores, load_stores)
    customers = _references("--customers", args.customers, load_customers)
    return Dhis2Lmis(
        config, items=items, stores=stores, customers=customers, on_connection=on_connection
    )


def _references(
    option: str, path: str | None, load: Callable[[str], tuple[_T, ...]]
) -> tuple[_T, ...]:
    """An mSupply list named on the command line; its problems are a usage error (exit 2)."""
    if not path:
        return ()
    try:
        return load(path)
    except ConfigError as exc:
        raise _UsageError(_message(exc, f"{option} {path} cannot be used")) from exc


# -- commands --------------------------------------------------------------------------------------


_SITE_FILES = ("config", "items", "stores", "customers")  # global options naming a site's files


def _cmd_demo(args: argparse.Namespace) -> int:
    # the fake server is only needed here: keep it out of every other command's start-up
    from dhis2_lmis.run.demo import demo_version, run_demo  # noqa: PLC0415

    try:
        version = demo_version(args.dhis2_version)
    except ValueError as exc:
        raise _UsageError(f"--dhis2-version: {exc}") from exc
    if args.dir and not args.serve:
        raise _UsageError("--dir is for --serve: the plain demo writes no files")
    # the demo brings its own server, configuration and lists: a file named here would be unread
    given = [f"--{name} {value}" for name in _SITE_FILES if (value := getattr(args, name))]
    if given:
        raise _UsageError(
            f"demo uses its own configuration and mSupply lists, not {', '.join(given)}; "
            f"`{_PROG} demo --serve` writes them into a folder for the other commands"
        )
    if args.serve and args.layout:
        raise _UsageError(
            "--layout is for the plain demo: --serve configures the demo's one data element per "
            "item data set (docs/layouts.md shows the layouts)"
        )
    if args.serve:
        return _serve_demo(version, args.dir)
    print(f"Starting an offline DHIS2 {version} on 127.0.0.1 ...", file=sys.stderr)
    summary = run_demo(version=version, layout=args.layout)
    print(summary)
    return EXIT_OK if summary.ok else EXIT_PROBLEMS


def _serve_demo(version: str, folder: str | None) -> int:
    from dhis2_lmis.run.demo import write_demo_files  # noqa: PLC0415
    from dhis2_lmis.testing import FakeDhis2  # noqa: PLC0415

    directory = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="dhis2-lmis-demo-"))
    if directory.exists() and not directory.is_dir():
        raise _UsageError(f"--dir {directory} is a file, not a folder")
    with FakeDhis2.demo(version) as fake:
        files = write_demo_files(directory, fake)
        lines = [
            f"Offline DHIS2 {fake.version} serving at {fake.url} (user admin, password "
            "district), until Ctrl-C.",
            f"Files written to {files.directory.resolve()}:",
            "  dhis2-lmis.toml, items.csv, stores.csv, customers.csv, packing-list.csv, values.csv",
            "In another terminal, try:",
            f"  cd {files.directory.resolve()}",
            *(f"  {command}" for command in files.commands()),
            "Press Ctrl-C to stop the server.",
        ]
        print("\n".join(lines), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _error(
                f"interrupted: demo server stopped; the files in {files.directory} stay, "
                "but point at a server that is gone (run demo --serve again to use them)"
            )
            return EXIT_INTERRUPTED


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
    print(f"configuration: OK ({_config_source(args)})")
    with _open_lmis(args, config) as lmis:
        check = lmis.test_connection()
        if not check.ok:
            _error(check.message)
            return EXIT_USAGE
        print(f"connection: {check.message}")
        findings = lmis.validate_setup()
    unset = [s for s in _SETTINGS if not _is_set(config, s)]
    for finding in findings:
        if not (finding.severity == "info" and finding.subject in unset):
            print(finding)  # the gaps are listed below, with the commands they stop
    for setting in unset:
        stopped = [need for need, settings in _NEEDS.items() if setting in settings]
        print(
            f"not configured [{setting}]: {_SETTINGS[setting]}; without it these refuse to "
            f"run: {', '.join(stopped)}"
        )
    serious = [f for f in findings if f.severity in ("error", "warning")]
    if serious:
        _error(f"{len(serious)} setup problem{'s' if len(serious) != 1 else ''} found")
        return EXIT_PROBLEMS
    runnable = [need for need, settings in _NEEDS.items() if not set(settings) & set(unset)]
    if unset:
        print(f"setup: OK for {', '.join(runnable) or 'nothing yet'}; the rest is not configured")
    else:
        print("setup: OK (programs, data elements, data set and references match the server)")
    return EXIT_OK


def _cmd_pull(args: argparse.Namespace) -> int:
    what: str = args.what
    config = _load_config(args)
    _require(config, args, f"pull {what}")
    with _open_lmis(args, config) as lmis:
        if what == "stock-reports":
            return _pull_stock_reports(lmis, args)
        try:
            return _pull_events(lmis, args, what)
        except RequestRejectedError as exc:
            if not args.org_unit or args.org_unit not in (exc.dhis2_message or ""):
                raise
            raise _UsageError(
                f"--org-unit {args.org_unit}: DHIS2 knows no such org unit "
                f"({exc.dhis2_message}); check the org unit's UID or code, and run "
                f"`{_PROG} check` to see which org units the server has for your stores"
            ) from exc


def _pull_events(lmis: Dhis2Lmis, args: argparse.Namespace, what: str) -> int:
    """Print the records (or with ``--raw`` the events) of one program."""
    program: Literal["order", "receipt", "str"] = (
        "order" if what == "order" else "receipt" if what == "receipt" else "str"
    )
    since, org_unit = args.since, args.org_unit
    if args.raw:
        events = lmis.pull(program, since=since, org_unit=org_unit)
        return _emit(_progress(events), EVENTS, args.format)
    if program == "order":
        requisitions = lmis.fetch_completed_requisitions(since=since, org_unit=org_unit)
        return _emit(_progress(requisitions), REQUISITIONS, args.format)
    if program == "receipt":
        receipts = lmis.fetch_completed_receipts(since=since, org_unit=org_unit)
        return _emit(_progress(receipts), RECEIPTS, args.format)
    transactions = lmis.fetch_stock_transactions(since=since, org_unit=org_unit)
    return _emit(_progress(transactions), STOCK_TRANSACTIONS, args.format)


def _pull_stock_reports(lmis: Dhis2Lmis, args: argparse.Namespace) -> int:
    if not args.period:
        raise _UsageError("pull stock-reports needs --period (e.g. --period 202611)")
    try:
        reports = lmis.fetch_stock_reports(
            _period_arg(args.period),
            org_unit=args.org_unit,
            children=args.children,
            since=args.since,
        )
        return _emit(_progress(reports), STOCK_REPORTS, args.format)
    except PeriodError as exc:  # its message quotes the period already
        raise _UsageError(f"--period: {exc}") from exc


def _cmd_stock_on_hand(args: argparse.Namespace) -> int:
    config = _load_config(args)
    _require(config, args, "stock-on-hand")
    with _open_lmis(args, config) as lmis:
        levels = lmis.fetch_stock_on_hand(org_unit=args.org_unit)
        return _emit(_progress(levels), STOCK_LEVELS, args.format)


def _cmd_push_values(args: argparse.Namespace) -> int:
    config = _load_config(args)
    _require(config, args, "push-values")
    rows = _read_values_csv(args.file)
    with _open_lmis(args, config) as lmis:
        period = args.period or next((r["period"] for _, r in rows if r.get("period")), None)
        if not period:
            raise _UsageError(f"{args.file}: no period: pass --period or fill the period column")
        placeless = [line for line, row in rows if not row.get("org_unit")]
        if placeless and not args.org_unit:
            raise _UsageError(
                f"{args.file}: {len(placeless)} row(s) name no org unit (line "
                f"{', '.join(map(str, placeless[:5]))}{', ...' if len(placeless) > 5 else ''})"
                ": pass --org-unit or fill the org_unit column"
            )
        try:
            builder = lmis.data_value_set(period=_period_arg(period), org_unit=args.org_unit)
        except PeriodError as exc:  # its message quotes the period already
            where = "--period" if args.period else f"{args.file}, period column"
            raise _UsageError(f"{where}: {exc}") from exc
        builder.add_rows((row for _, row in rows), names=lambda i: f"{args.file}:{rows[i][0]}")
        if not len(builder) and not builder.rejected:
            _error(f"{args.file}: no values to push")
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
            _error(_message(exc))
            return EXIT_PROBLEMS
    print(summary)
    for conflict in summary.conflicts:  # on stdout in the summary; problems go to stderr too
        _error(f"{args.file}: not saved: {conflict}")
    return EXIT_OK if summary.ok and not builder.rejected else EXIT_PROBLEMS


def _period_arg(text: str) -> date | str:
    """A ``YYYY-MM-DD`` date (the period that holds it), else a period id as given.

    Only that one date form: Python 3.11's ``date.fromisoformat`` also reads ``2026W10`` and
    ``20261101`` as dates, which would silently turn a weekly or daily period id into the
    data set's period holding its first day.
    """
    if _ISO_DAY.fullmatch(text.strip()):
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            pass  # 2026-02-30: parse_period names what is wrong with it
    return text


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _read_values_csv(path: str) -> list[tuple[int, Row]]:
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            problem = csv_header_problem(path, reader.fieldnames, ("data_element", "value"))
            if problem:
                raise _UsageError(problem)
            return [
                (
                    number,
                    {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()},
                )
                for number, row in enumerate(reader, start=2)
            ]
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _UsageError(f"{path} is not UTF-8 text ({exc.reason}): save it as CSV UTF-8") from exc
    except csv.Error as exc:
        raise _UsageError(f"{path} is not a readable CSV file: {exc}") from exc


def _cmd_sync(args: argparse.Namespace) -> int:
    config = _load_config(args)
    programs = _sync_programs(config, args)
    packing: PackingList | None = None
    if args.packing_list:
        if "receipt" not in programs:
            raise _UsageError("--packing-list is for receipts, but this sync reads no receipts")
        _require(config, args, "sync --packing-list")
        try:
            packing = PackingList.from_csv(args.packing_list)
        except PackingListError as exc:
            raise _UsageError(str(exc)) from exc

    closed_output = False

    def hand_over(row: Mapping[str, object]) -> None:
        nonlocal closed_output
        try:
            _write_json_line(row)
        except BrokenPipeError:  # the reader is gone: this event fails, the rest waits
            closed_output = True
            runner.stop()
            raise

    def on_requisition(requisition: Requisition, /, *, is_update: bool) -> None:
        for row in _text_rows(REQUISITIONS, requisition):
            hand_over({"program": "order", "is_update": is_update, **row})

    def on_receipt(
        receipt: ConsignmentReceipt, /, *, is_update: bool
    ) -> Iterable[StockReceipt] | None:
        # look the consignment up first: a receipt that is not on the packing list fails
        # (PackingListError) before it is handed over, and is tried again next run
        stock = packing.stock_receipts_for(receipt) if packing is not None else None
        for row in _text_rows(RECEIPTS, receipt):
            hand_over({"program": "receipt", "is_update": is_update, **row})
        return stock

    def print_report(report: RunReport) -> None:
        print(report, file=sys.stderr, flush=True)

    sync_log = logging.getLogger("dhis2_lmis.run.sync")
    repeats = _ListedInTheReport()
    if not args.verbose:  # each error is in the report printed below: log it only with -v
        sync_log.addFilter(repeats)
    try:
        with SqliteStateStore(config.sync.state) as state:
            lmis = _open_lmis(args, config, on_connection=state.set_last_connection)
            with lmis:
                runner = SyncRunner(
                    lmis, state, on_requisition=on_requisition, on_receipt=on_receipt
                )
                if args.forever:
                    reports = runner.run_forever(programs=programs, on_report=print_report)
                else:
                    with runner.handle_signals():
                        reports = [runner.run_once(programs)]
                    print_report(reports[0])
    finally:
        sync_log.removeFilter(repeats)
    if closed_output:
        _silence_stdout()
        return EXIT_CLOSED_OUTPUT
    return _sync_exit(reports, interrupted=runner.stopping)


class _ListedInTheReport(logging.Filter):
    """Drops the sync's per-error log lines: the run report the command prints lists them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "dhis2_record")


def _sync_programs(config: Dhis2Config, args: argparse.Namespace) -> tuple[SyncProgram, ...]:
    """``--programs``, or every configured one; naming one that is not configured is an error."""
    if args.programs is None:
        configured = tuple(p for p in _SYNC_PROGRAMS if _is_set(config, f"programs.{p}"))
        if not configured:
            raise _UsageError(
                f"nothing to sync: {_config_source(args)} sets neither programs.order nor "
                "programs.receipt; set the program UIDs to sync (docs/configuration.md)"
            )
        return configured
    wanted = tuple(p for p in _SYNC_PROGRAMS if p in args.programs)
    _require(config, args, *(f"sync ({p}s)" for p in wanted))
    return wanted


def _sync_exit(reports: Sequence[RunReport], *, interrupted: bool) -> int:
    """The exit code of the runs (their reports are printed already), with a closing line."""
    if any(r.stopped == "authentication" for r in reports):
        _error(
            "DHIS2 refused the credentials: the sync stopped after the first refusal, so the "
            "account is not locked; fix [dhis2] username/password (or token) and run again"
        )
        return EXIT_USAGE
    if interrupted:
        left = sorted({p for r in reports for p in r.not_synced})
        _error(
            "interrupted: "
            + (
                f"{', '.join(left)} not synced to the end; the next run reads the rest"
                if left
                else "every started run finished; no event is left half-done"
            )
        )
        return EXIT_INTERRUPTED
    failed = sum(r.failed for r in reports)
    errors = sum(len(r.errors) for r in reports)
    if failed or errors:
        _error(
            f"{failed} event{'s' if failed != 1 else ''} failed, {errors} error"
            f"{'s' if errors != 1 else ''} (listed above; e-mailed when [smtp] host and "
            "[lmis] error_emails are set); failed events are tried again next run"
        )
        return EXIT_PROBLEMS
    return EXIT_OK


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
    """A table value as the command prints it: ISO times, plain decimals, true/false, "" for
    nothing (the same in table, CSV and JSON lines)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _text_rows(table: Table[_T, Any], record: _T) -> Iterator[Row]:
    """The record's rows of ``table`` (the columns ``to_dataframe`` has), as text."""
    for values in table.rows(record):
        yield dict(zip(table.names, map(_text, values), strict=True))


def _emit(records: Iterable[_T], table: Table[_T, Any], fmt: Format) -> int:
    """Print records as rows; exit 1 when some had problems (they are printed regardless)."""
    with_problems = 0

    def rows() -> Iterator[Row]:
        nonlocal with_problems
        for record in records:
            record_rows = list(_text_rows(table, record))
            if any(r.get("problems") for r in record_rows):
                with_problems += 1
            yield from record_rows

    out = sys.stdout
    if fmt == "jsonl":
        for row in rows():
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=table.names, lineterminator="\n")
        writer.writeheader()
        for row in rows():
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
