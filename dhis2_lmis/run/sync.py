"""SyncRunner: the scheduled pull/push cycle, idempotent and resumable.

One run reads the completed events of each program that has a handler, hands each new one to
the caller, pushes the stock receipts a receipt handler returns, and remembers what it did in a
:class:`~dhis2_lmis.run.state.StateStore`. Three promises shape the code:

* **At least once, never lost.** The handler runs first; its outcome and the cursor move are
  then committed together, in one :meth:`~dhis2_lmis.run.state.StateStore.transaction` per event.
  A process killed in between hands that event over again next run; nothing is marked handled
  unless its handler (and its stock push) succeeded.
* **Once after success.** An event already handled at the same ``updatedAt`` is skipped
  (``duplicates_skipped``), so the overlap window and retries never hand it over twice. A
  re-completed event (same UID, newer ``updatedAt``) is handed over again with
  ``is_update=True``.
* **Failures are retried, never skipped.** The cursor (an ``updatedAt`` watermark) only moves
  past events that succeeded: after the first failure of a run it stays put, so the next
  fetch, which starts at ``cursor - overlap``, covers the failed event again. As a second line
  of defence a run also starts no later than the oldest event the store lists as failed.

A program's first run (no cursor yet) may read with ``[sync] workers``; its events then come
in no order, so its cursor moves once, at the end, and only when every event was read and
handed over (an interrupted or failing first run leaves no cursor, and the next one reads from
the start again, skipping what was handled).

The price of the last rule: while one event keeps failing, every run re-reads the events
updated since then (they are recognised and skipped, not handed over). Fix or handle the
failing event to let the cursor move on.

Fetch trouble (network, permissions, 5xx after retries, a missing program UID) stops that
program's fetch for this run, lands in the report's ``errors`` and leaves the cursor where the
last success put it; the next program still runs. Refused credentials are different: they stop
the whole run at once (DHIS2 locks an account after a few failed logins, so trying each program
in turn would lock it), and :meth:`SyncRunner.run_forever` ends its loop. Every error of a run is
logged on ``dhis2_lmis.run.sync`` and, when ``lmis.error_emails`` and ``[smtp] host`` are set,
mailed once after the run.

The whole rule, for operators: docs/sync.md.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

import attrs

from dhis2_lmis.config import parse_interval
from dhis2_lmis.dhis2 import _html
from dhis2_lmis.dhis2._clock import utc_now
from dhis2_lmis.errors import AuthenticationError, ConfigError, Dhis2Error
from dhis2_lmis.lmis.models import ConsignmentReceipt, Requisition
from dhis2_lmis.lmis.stock import StockReceipt
from dhis2_lmis.run.notify import ErrorReport, send_error_report
from dhis2_lmis.run.state import Outcome, StateStore

if TYPE_CHECKING:  # pragma: no cover - the facade sits above this module (client -> sync)
    from dhis2_lmis.client import Dhis2Lmis

__all__ = [
    "ReceiptHandler",
    "RequisitionHandler",
    "RunReport",
    "StopReason",
    "SyncProgram",
    "SyncRunner",
]

log = logging.getLogger(__name__)

SyncProgram = Literal["order", "receipt"]
#: Why a run ended before syncing every program it was asked to (None: it did not).
StopReason = Literal["interrupted", "authentication"]
_PROGRAMS: tuple[SyncProgram, ...] = ("order", "receipt")
_LOCK_OWNER = "sync"

_Record = TypeVar("_Record", Requisition, ConsignmentReceipt)


class RequisitionHandler(Protocol):
    """Takes one completed requisition; raising marks the event failed (retried next run).

    ``is_update`` is True when an earlier version of the same event was handled before (the
    requisition was re-opened and completed again in DHIS2).
    """

    def __call__(self, requisition: Requisition, /, *, is_update: bool) -> None: ...


class ReceiptHandler(Protocol):
    """Takes one consignment receipt; returns the stock receipts to write to the STR program.

    Raising marks the event failed; so does a stock push that fails for any returned receipt.
    Returning the same receipts again is safe: the push recognises receipts already written.
    """

    def __call__(
        self, receipt: ConsignmentReceipt, /, *, is_update: bool
    ) -> Iterable[StockReceipt] | None: ...


@attrs.frozen
class RunReport:
    """What one :meth:`SyncRunner.run_once` did.

    Attributes:
        fetched: events the fetches returned (duplicates included).
        handled: events whose handler (and stock push) succeeded.
        duplicates_skipped: events already handled at the same ``updatedAt``.
        failed: events whose handler or stock push failed; they are tried again next run.
        pushed: stock receipts written to the STR program by this run.
        errors: every error of the run, one line each (also logged and e-mailed); record
            problems of handed-over events are included.
        started_at / finished_at: the run's clock readings.
        programs: the programs this run was asked to sync.
        stopped: why the run ended early: ``"interrupted"`` (a stop was asked for, e.g.
            Ctrl-C) or ``"authentication"`` (DHIS2 refused the credentials); None when every
            program ran to the end of its events.
        not_synced: the programs not read to the end; their remaining events wait for the
            next run (nothing is lost: the cursor stays before them).
    """

    fetched: int
    handled: int
    duplicates_skipped: int
    failed: int
    pushed: int
    errors: tuple[str, ...]
    started_at: datetime
    finished_at: datetime
    programs: tuple[str, ...]
    stopped: StopReason | None = None
    not_synced: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every program ran to the end, nothing failed and no error was recorded."""
        return not self.failed and not self.errors and not self.not_synced

    @property
    def duration(self) -> timedelta:
        """How long the run took."""
        return self.finished_at - self.started_at

    def summary(self) -> str:
        """One line of counts, as used in the log and in the error e-mail."""
        return (
            f"{self.fetched} fetched, {self.handled} handled, "
            f"{self.duplicates_skipped} duplicates skipped, {self.failed} failed, "
            f"{self.pushed} stock receipts pushed, {len(self.errors)} "
            f"error{'' if len(self.errors) == 1 else 's'}"
        )

    def __str__(self) -> str:
        head = (
            f"sync run of {', '.join(self.programs) or 'no programs'} at "
            f"{self.started_at.isoformat(timespec='seconds')} "
            f"({self.duration.total_seconds():.1f} s): {self.summary()}"
        )
        if self.not_synced:
            why = "interrupted" if self.stopped == "interrupted" else "stopped"
            head += (
                f"\n  {why}: {', '.join(self.not_synced)} not synced to the end; the next run "
                "reads the remaining events"
            )
        return head + "".join(f"\n  - {error}" for error in self.errors)

    def __repr__(self) -> str:
        return f"<RunReport {', '.join(self.programs) or 'no programs'}: {self.summary()}>"

    def _repr_html_(self) -> str:
        head = (
            f"sync run of {', '.join(self.programs) or 'no programs'} at "
            f"{_html.when(self.started_at)} ({self.duration.total_seconds():.1f} s)"
        )
        counts = (
            ("fetched", self.fetched),
            ("handled", self.handled),
            ("duplicates skipped", self.duplicates_skipped),
            ("failed", self.failed),
            ("stock receipts pushed", self.pushed),
            ("errors", len(self.errors)),
        )
        if self.not_synced:
            head += f"; {self.stopped or 'stopped'}: {', '.join(self.not_synced)} not synced"
        return (
            _html.paragraph(head) + _html.key_value_table(counts) + _html.ordered_list(self.errors)
        )


@attrs.define
class _Tally:
    """Counts of one run, filled as it goes."""

    fetched: int = 0
    handled: int = 0
    duplicates_skipped: int = 0
    failed: int = 0
    pushed: int = 0


@attrs.frozen
class _SmtpForReport:
    """``[smtp]`` with the password resolved, in the shape :func:`send_error_report` reads."""

    host: str
    port: int
    starttls: bool
    ssl: bool
    username: str | None
    password: str | None = attrs.field(repr=False)
    sender: str
    timeout: float


class SyncRunner:
    """The scheduled job: pull completed orders and receipts, hand them over, push stock.

    Args:
        lmis: the configured facade; its ``config`` gives the overlap, interval, error
            addresses and SMTP settings.
        state: where cursors and outcomes are kept (usually a
            :class:`~dhis2_lmis.run.state.SqliteStateStore`).
        on_requisition: handles completed Order-program events; None = orders are not synced.
        on_receipt: handles completed Receipt-program events and returns the stock receipts
            to push; None = receipts are not synced.
        overlap: how far before the cursor each fetch starts, so events written late with an
            earlier ``updatedAt`` (a long server transaction) are not missed; default
            ``[sync] overlap_minutes``.
        now: the clock for run times and outcome times.
        sleep: waits between runs of :meth:`run_forever`; default: an interruptible wait that
            :meth:`stop` ends at once.
        rng: draws the jitter of :meth:`run_forever`.
        notify: e-mail the run's errors when ``lmis.error_emails`` and ``[smtp] host`` are set.

    Example:
        >>> runner = SyncRunner(lmis, SqliteStateStore("dhis2-lmis.sqlite"),  # doctest: +SKIP
        ...                     on_requisition=lambda r, *, is_update: print(r.event.uid))
        >>> print(runner.run_once())  # doctest: +SKIP
    """

    def __init__(
        self,
        lmis: Dhis2Lmis,
        state: StateStore,
        *,
        on_requisition: RequisitionHandler | None = None,
        on_receipt: ReceiptHandler | None = None,
        overlap: timedelta | None = None,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        notify: bool = True,
    ) -> None:
        self.lmis = lmis
        self.state = state
        self.on_requisition = on_requisition
        self.on_receipt = on_receipt
        self.overlap = overlap if overlap is not None else lmis.config.sync.overlap
        if self.overlap < timedelta(0):
            raise ConfigError(f"overlap must not be negative, not {self.overlap}")
        self.notify = notify
        self._now = now
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._rng = rng if rng is not None else random.Random()
        self._in_forever = False

    def __repr__(self) -> str:
        handlers = [
            name
            for name, handler in (("order", self.on_requisition), ("receipt", self.on_receipt))
            if handler is not None
        ]
        return f"SyncRunner({self.lmis!r}, handlers={handlers}, overlap={self.overlap})"

    # -- one run ---------------------------------------------------------------------------------

    def run_once(self, programs: Sequence[SyncProgram] = _PROGRAMS) -> RunReport:
        """Sync each of ``programs`` that has a handler, once, and report.

        Args:
            programs: ``"order"`` and/or ``"receipt"``.

        Returns:
            The run's counts and errors. Fetch failures (network, authentication, server)
            do not raise: they are in ``errors``, and that program's cursor stays put.

        Raises:
            StateLockedError: another runner is working on the same state.
            StateError: the state file cannot be read or written.
            ConfigError: an unknown program name.
        """
        if not self._in_forever:
            self._stop.clear()
        wanted = tuple(programs)
        unknown = [p for p in wanted if p not in _PROGRAMS]
        if unknown:
            raise ConfigError(
                f"cannot sync program(s) {', '.join(map(repr, unknown))}: use order or receipt"
            )
        with self.state.acquire_runner_lock(_LOCK_OWNER):
            return self._run_locked(wanted)

    def _run_locked(self, programs: tuple[SyncProgram, ...]) -> RunReport:
        started_at = self._now()
        secrets = self._secrets()
        errors = ErrorReport(now=self._now, secrets=secrets)
        tally = _Tally()
        run_id = self.state.start_run(programs)
        log.info("sync run %d of %s started", run_id, ", ".join(programs))
        stopped: StopReason | None = None
        not_synced: list[str] = []
        for program in programs:
            if stopped is not None or self._stop.is_set():
                stopped = stopped or "interrupted"
                log.info("sync stopped (%s): %s not synced in this run", stopped, program)
                not_synced.append(program)
                continue
            if program == "order":
                if self.on_requisition is None:
                    log.debug("no requisition handler: orders are not synced")
                    continue
                finished = self._sync_program(
                    "order",
                    self.lmis.fetch_completed_requisitions,
                    self._requisition_step(self.on_requisition),
                    tally,
                    errors,
                )
            else:
                if self.on_receipt is None:
                    log.debug("no receipt handler: receipts are not synced")
                    continue
                finished = self._sync_program(
                    "receipt",
                    self.lmis.fetch_completed_receipts,
                    self._receipt_step(self.on_receipt, tally, errors),
                    tally,
                    errors,
                )
            if finished is not True:
                not_synced.append(program)
            if isinstance(finished, str):
                stopped = finished
        messages = tuple(f"[{e.program}] {e.record}: {e.message}" for e in errors.entries)
        report = RunReport(
            fetched=tally.fetched,
            handled=tally.handled,
            duplicates_skipped=tally.duplicates_skipped,
            failed=tally.failed,
            pushed=tally.pushed,
            errors=messages,
            started_at=started_at,
            finished_at=self._now(),
            programs=programs,
            stopped=stopped,
            not_synced=tuple(not_synced),
        )
        self.state.finish_run(
            run_id,
            fetched=report.fetched,
            handled=report.handled,
            duplicates_skipped=report.duplicates_skipped,
            failed=report.failed,
            pushed=report.pushed,
            errors=report.errors,
        )
        log.info("sync run %d finished: %s", run_id, report.summary())
        if errors and self.notify:
            self._mail(errors, report, secrets)
        return report

    def _sync_program(
        self,
        program: SyncProgram,
        fetch: Callable[..., Iterator[_Record]],  # (*, since, workers): a Dhis2Lmis fetcher
        step: Callable[[_Record, bool], str | None],
        tally: _Tally,
        errors: ErrorReport,
    ) -> Literal[True] | StopReason | None:
        """Fetch, de-duplicate, hand over, record and move the cursor for one program.

        Returns True when every event was read; else why not: ``"interrupted"``,
        ``"authentication"``, or None for a fetch error (reported; the next program runs).
        """
        state = self.state
        cursor = state.get_cursor(program)
        since = cursor - self.overlap if cursor is not None else None
        still_failed = {e.event_uid: e.updated_at for e in state.failed_events(program)}
        if since is not None and still_failed:
            oldest = min(still_failed.values(), key=_sortable)
            if _sortable(oldest) < _sortable(since):
                log.info("%s: reading from %s, the oldest failed event", program, oldest)
                since = oldest
        log.debug("%s: fetching events updated after %s", program, since)
        # A first run may read with [sync] workers; the events then come in no order, so the
        # cursor moves once, at the end, and only when every event was read and handled.
        workers = self.lmis.config.sync.workers if cursor is None else 1
        in_order = workers == 1
        advancing = True  # false after the first failure: the cursor must not pass it
        pending: datetime | None = None  # a cursor move owed for skipped duplicates
        records = iter(fetch(since=since, workers=workers))
        complete = False
        ended: Literal[True] | StopReason | None = "interrupted"
        while not self._stop.is_set():
            try:
                record = next(records)
            except StopIteration:
                complete = True
                ended = True
                break
            except AuthenticationError as exc:
                errors.add(
                    program,
                    "fetch",
                    f"{exc}; the run stopped at once (DHIS2 locks accounts after a few failed "
                    "logins): fix the credentials, nothing was marked handled",
                )
                ended = "authentication"
                break
            except Dhis2Error as exc:
                errors.add(program, "fetch", f"{exc}; the next run reads these events again")
                ended = None
                break
            tally.fetched += 1
            event = record.event
            uid = event.uid
            updated_at = record.updated_at or event.updated_at
            still_failed.pop(uid, None)
            if updated_at is None:
                tally.failed += 1
                errors.add(
                    program,
                    f"event {uid}",
                    "DHIS2 sent no updatedAt: the event cannot be tracked and was not handed over",
                )
                continue
            if state.is_processed(program, uid, updated_at):
                tally.duplicates_skipped += 1
                if advancing:
                    pending = updated_at if in_order else _later(pending, updated_at)
                continue
            is_update = state.was_handled_before(program, uid)
            for problem in record.problems:
                errors.add(program, f"event {uid}", f"handed over with a problem: {problem}")
            error = step(record, is_update)
            outcome: Outcome = "handled" if error is None else "failed"
            with state.transaction():
                state.record_outcome(program, uid, updated_at, outcome, error=error, at=self._now())
                if not in_order:
                    if error is None:
                        pending = _later(pending, updated_at)  # the end of the run moves it
                elif advancing and error is None:
                    state.set_cursor(program, updated_at)
                    pending = None
                elif advancing and pending is not None:
                    state.set_cursor(program, pending)
                    pending = None
            if error is None:
                tally.handled += 1
            else:
                tally.failed += 1
                advancing = False
                errors.add(program, f"event {uid}", error)
        if pending is not None and (in_order or (complete and advancing)):
            state.set_cursor(program, pending)
        if complete and still_failed:
            for uid, at in still_failed.items():
                log.warning(
                    "%s: event %s failed at updatedAt %s and is no longer returned as completed "
                    "(re-opened, deleted or out of reach); runs keep reading from then until "
                    "it comes back",
                    program,
                    uid,
                    at,
                )
        return ended

    def _requisition_step(
        self, handler: RequisitionHandler
    ) -> Callable[[Requisition, bool], str | None]:
        def step(requisition: Requisition, is_update: bool) -> str | None:
            try:
                handler(requisition, is_update=is_update)
            except Exception as exc:  # any handler failure fails this event only
                return _describe_handler_failure(exc)
            return None

        return step

    def _receipt_step(
        self, handler: ReceiptHandler, tally: _Tally, errors: ErrorReport
    ) -> Callable[[ConsignmentReceipt, bool], str | None]:
        def step(receipt: ConsignmentReceipt, is_update: bool) -> str | None:
            try:
                stock = tuple(handler(receipt, is_update=is_update) or ())
            except Exception as exc:  # any handler failure fails this event only
                return _describe_handler_failure(exc)
            if not stock:
                return None
            try:
                pushed = self.lmis.push_stock_receipts(stock)
            except Dhis2Error as exc:
                return f"stock push failed: {exc}"
            tally.pushed += len(pushed.created)
            for outcome in pushed.already_pushed:
                log.info("stock receipt already in DHIS2: %s", outcome)
            if pushed.failed:
                lines = "; ".join(str(outcome) for outcome in pushed.failed)
                return f"stock push failed for {len(pushed.failed)} of {len(pushed)}: {lines}"
            return None

        return step

    # -- error e-mail ----------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        """Every configured secret, resolved, so the report can mask it."""
        server, smtp = self.lmis.config.dhis2, self.lmis.config.smtp
        found: list[str] = []
        for resolve in (
            server.resolved_password,
            server.resolved_token,
            server.resolved_client_secret,
            smtp.resolved_password,
        ):
            try:
                value = resolve()
            except ConfigError:
                continue  # an unset variable holds no secret to hide
            if value:
                found.append(value)
        return tuple(found)

    def _mail(self, errors: ErrorReport, report: RunReport, secrets: Sequence[str]) -> None:
        config = self.lmis.config
        recipients = config.lmis.error_emails
        smtp = config.smtp
        if not recipients:
            return
        if not smtp.host:
            log.warning("%d errors, but [smtp] host is not set: no error e-mail", len(errors))
            return
        try:
            password = smtp.resolved_password()
        except ConfigError as exc:
            log.warning("cannot e-mail the error report: %s", exc)
            return
        settings = _SmtpForReport(
            host=smtp.host,
            port=smtp.port,
            starttls=smtp.starttls,
            ssl=smtp.ssl,
            username=smtp.username,
            password=password,
            sender=smtp.sender or "dhis2-lmis@localhost",
            timeout=smtp.timeout,
        )
        send_error_report(
            errors,
            recipients=recipients,
            smtp=settings,
            secrets=secrets,
            run_summary=report.summary(),
            now=self._now,
        )

    # -- the schedule ----------------------------------------------------------------------------

    def run_forever(
        self,
        interval: str | timedelta | None = None,
        *,
        jitter: timedelta = timedelta(minutes=5),
        programs: Sequence[SyncProgram] = _PROGRAMS,
        max_runs: int | None = None,
        on_report: Callable[[RunReport], None] | None = None,
    ) -> list[RunReport]:
        """Run, wait ``interval`` plus a random part of ``jitter``, run again, until stopped.

        SIGINT and SIGTERM (handled only when called from the main thread, and restored on
        return) ask for a stop: the event being handled finishes and is recorded, the rest
        waits for the next start. A second signal raises ``KeyboardInterrupt`` at once.
        :meth:`stop` does the same from another thread or a handler.

        Args:
            interval: ``"1d"``, ``"12h"``, ``"90s"``... or a timedelta; default
                ``[sync] interval``.
            jitter: up to this much is added to each wait, so many sites do not hit one
                server at the same minute.
            programs: as for :meth:`run_once`.
            max_runs: stop after this many runs (None: until stopped).
            on_report: called with each run's report as soon as the run ends (to print or
                log it while the loop goes on).

        Returns:
            The report of every run, oldest first. A run whose credentials DHIS2 refused
            (``stopped == "authentication"``) is the last: the loop ends rather than lock
            the account with a failed login every interval.

        Raises:
            StateLockedError, StateError: as for :meth:`run_once`; the loop ends.
            ConfigError: an invalid interval or program.
        """
        if interval is None:
            delay = self.lmis.config.sync.interval_delta
        elif isinstance(interval, str):
            try:
                delay = parse_interval(interval)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        else:
            delay = interval
        if delay <= timedelta(0) or jitter < timedelta(0):
            raise ConfigError("interval must be positive and jitter must not be negative")
        self._stop.clear()
        reports: list[RunReport] = []
        self._in_forever = True
        try:
            with self.handle_signals():
                while not self._stop.is_set():
                    reports.append(self.run_once(programs))
                    if on_report is not None:
                        on_report(reports[-1])
                    if reports[-1].stopped == "authentication":
                        log.error("DHIS2 refused the credentials: the sync loop stops")
                        break
                    if max_runs is not None and len(reports) >= max_runs:
                        break
                    if self._stop.is_set():
                        break
                    wait = delay.total_seconds() + self._rng.uniform(0.0, jitter.total_seconds())
                    log.info("next sync run in %.0f s", wait)
                    self._sleep(wait)
        finally:
            self._in_forever = False
        log.info("sync loop ended after %d runs", len(reports))
        return reports

    def stop(self) -> None:
        """Ask :meth:`run_forever` (or a running :meth:`run_once`) to stop after this event."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for and the loop has not started again."""
        return self._stop.is_set()

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    @contextmanager
    def handle_signals(self) -> Iterator[None]:
        """While inside, SIGINT and SIGTERM ask for a stop instead of killing the process.

        The event being handled finishes and is recorded; the run reports ``stopped =
        "interrupted"`` and the programs it did not finish. A second signal raises
        ``KeyboardInterrupt`` at once (the event in hand is then not recorded and is handed
        over again next run). Does nothing outside the main thread; the previous handlers
        are restored on exit. :meth:`run_forever` uses it; wrap :meth:`run_once` in it to give
        a single run the same behaviour.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            log.info("signal %s: stopping after the current event", signal.Signals(signum).name)
            self.stop()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _describe_handler_failure(exc: Exception) -> str:
    log.debug("handler failed", exc_info=exc)
    text = str(exc)
    return f"handler raised {type(exc).__name__}" + (f": {text}" if text else "")


def _sortable(value: datetime) -> datetime:
    """A value ``<`` can compare whatever its kind: naive DHIS2 times are taken as UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _later(current: datetime | None, value: datetime) -> datetime:
    """The later of two ``updatedAt`` values (``current`` may be unset)."""
    return value if current is None or _sortable(value) > _sortable(current) else current
