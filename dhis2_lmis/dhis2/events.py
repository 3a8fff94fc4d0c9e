"""EventQuery and iter_events(): version-adaptive, loss-free reading of program events.

Offset paging loses events when the program changes while it is read: an already-read event
that gets a newer ``updatedAt`` moves to the end, shifts every later event back by one, and an
unread event slips onto a page already read. So events are read by a keyset cursor on
``updatedAt``: each request asks for ``updatedAfter`` = the last timestamp seen (less one
millisecond, so an inclusive or exclusive server bound both work), ordered by ``updatedAt``
ascending, and events are de-duplicated by UID. A run of identical timestamps that fills a
page is read whole in one answer (up to ten pages), a snapshot no edit can shift, and the
cursor moves past it; offset paging is used only inside a run longer than that. A parallel
read (``workers``) runs that cursor over several ``updatedAt`` windows at once (the "parallel
reading" section below).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import operator
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, tzinfo
from typing import Literal

import attrs

from dhis2_lmis.dhis2._json import JsonObject
from dhis2_lmis.dhis2._uids import IdScheme
from dhis2_lmis.dhis2.convert import (
    EventPage,
    TrackedEntityRef,
    event_page_decoder,
    format_timestamp,
    tracked_entity_refs,
)
from dhis2_lmis.dhis2.records import Event
from dhis2_lmis.dhis2.session import Dhis2Session, PageLoop, ParamValue, paging_params
from dhis2_lmis.dhis2.versions import Dialect
from dhis2_lmis.errors import ResponseFormatError

__all__ = [
    "INCLUDE_DELETED_PARAM",
    "EventQuery",
    "OrgUnitMode",
    "iter_event_pages",
    "iter_events",
    "iter_tracked_entities",
]

log = logging.getLogger(__name__)

OrgUnitMode = Literal["SELECTED", "CHILDREN", "DESCENDANTS", "ACCESSIBLE", "CAPTURE", "ALL"]

_ONE_MS = timedelta(milliseconds=1)


INCLUDE_DELETED_PARAM = "includeDeleted"
"""The event reads' switch for deleted events (every version): a look-up by derived UID needs
them, so a deleted event is not written again."""


@attrs.frozen(kw_only=True)
class EventQuery:
    """Which events to read.

    Args:
        program: the program UID.
        program_stage: restrict to one stage.
        org_unit: an org unit UID; without it every org unit the user can access is read.
        org_unit_mode: defaults to DESCENDANTS with an org unit and ACCESSIBLE without.
        status: e.g. ``"COMPLETED"``.
        updated_after / updated_before: the ``updatedAt`` window; naive datetimes are taken as
            server-local time.
        occurred_after / occurred_before: the event-date window.
        tracked_entity: only events of this tracked entity (tracker programs).
        include_deleted: also return soft-deleted events.
        page_size: events per request.
        data_element_id_scheme: ``CODE`` asks DHIS2 to name data elements by code.
    """

    program: str
    program_stage: str | None = None
    org_unit: str | None = None
    org_unit_mode: OrgUnitMode | None = None
    status: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    tracked_entity: str | None = None
    include_deleted: bool = False
    page_size: int = attrs.field(default=1000)
    data_element_id_scheme: IdScheme = "UID"

    @page_size.validator
    def _check_page_size(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"page_size must be at least 1, got {value}")


def _params(query: EventQuery, dialect: Dialect, session: Dhis2Session) -> dict[str, ParamValue]:
    tz = session.time_zone
    mode = query.org_unit_mode or ("DESCENDANTS" if query.org_unit else "ACCESSIBLE")
    params: dict[str, ParamValue] = {
        "program": query.program,
        "programStage": query.program_stage,
        "orgUnit": query.org_unit,
        dialect.org_unit_mode_param: mode,
        "status": query.status,
        dialect.updated_before_param: _when(query.updated_before, tz),
        dialect.occurred_after_param: _when(query.occurred_after, tz),
        dialect.occurred_before_param: _when(query.occurred_before, tz),
        dialect.tracked_entity_param: query.tracked_entity,
        INCLUDE_DELETED_PARAM: True if query.include_deleted else None,
    }
    if query.data_element_id_scheme != "UID":
        params["dataElementIdScheme"] = query.data_element_id_scheme
    if dialect.event_fields:
        params["fields"] = dialect.event_fields
    return params


def _when(value: datetime | None, tz: tzinfo | None) -> str | None:
    return None if value is None else format_timestamp(value, tz)


def iter_events(session: Dhis2Session, query: EventQuery, *, workers: int = 1) -> Iterator[Event]:
    """Yield every event matching ``query`` exactly once.

    With ``workers=1`` (the default) one keyset cursor reads the events oldest update first.
    With ``workers=N`` the ``updatedAt`` range is cut into windows that ``N`` threads read at
    once over the session's connection pool (docs/performance.md): the same events, each
    once, but in no overall order. Each page's events still come oldest update first,
    pages of different windows interleave, and events updated during the read come last.

    Memory stays flat apart from the set of UIDs already yielded (about 80 bytes per event):
    one page at a time (ten for a run of identical timestamps); with workers, at most
    ``2 * workers + 1`` of those at once.

    Args:
        session: the connection.
        query: what to read. The session's dialect picks the endpoint: ``/api/tracker/events``,
            or ``/api/events`` for a session made with ``legacy_events=True``.
        workers: requests in flight at once; 1 reads sequentially.

    Raises:
        ValueError: ``workers`` is below 1.
        Dhis2Error subclasses from the session; ResponseFormatError for an unreadable page.
    """
    for page in iter_event_pages(session, query, workers=workers):
        yield from page
        del page  # not held while the next page is decoded


def iter_event_pages(
    session: Dhis2Session, query: EventQuery, *, workers: int = 1
) -> Iterator[list[Event]]:
    """The events of :func:`iter_events`, one page (a non-empty list) at a time.

    For readers that look something up per event in batches (item refs, tracked entities):
    a page is the natural batch, so they need not re-chunk a flat stream. Same arguments,
    order, uniqueness and errors as :func:`iter_events`.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    read = _WindowReader(session, query, session.dialect)
    if workers == 1:
        pages = read(_Window(cursor=query.updated_after))
    else:
        pages = _read_parallel(read, workers)
    seen: set[str] = set()
    for events in pages:
        fresh = _unseen(events, seen)
        if fresh:
            yield fresh
        # freed before the next page is decoded: its memory is reused, not grown
        del events, fresh


_uid_of = operator.attrgetter("uid")


def _unseen(events: list[Event], seen: set[str]) -> list[Event]:
    """The events of a page whose UID was not yielded before, now added to ``seen``.

    A page of UIDs new to the read and distinct among themselves (nearly every page) is
    checked with set operations in C, with no Python step per event; only a page that
    repeats a UID is filtered event by event. Events without a UID are always kept. A
    function of its own, so that no loop variable keeps an event of the page alive once the
    page is let go.
    """
    uids = set(map(_uid_of, events))
    if len(uids) == len(events):
        uids.discard("")
        if seen.isdisjoint(uids):
            seen |= uids
            return events
    fresh: list[Event] = []
    for event in events:
        if event.uid:
            if event.uid in seen:
                continue
            seen.add(event.uid)
        fresh.append(event)
    return fresh


@attrs.define
class _Window:
    """A slice of the ``updatedAt`` range, read by one keyset cursor.

    Slices that touch overlap by a millisecond (a server bound may be inclusive or exclusive),
    so none drops an event; an event read twice is dropped by the UID check of iter_events.

    Attributes:
        cursor: where reading starts (the first request asks ``updatedAfter`` = this - 1 ms).
        end: where the slice ends (``updatedBefore``); None: the query's own bound. Lowered
            when the rest of the slice is split off while it is read.
    """

    cursor: datetime | None
    end: datetime | None = None


SplitHook = Callable[[_Window, datetime], None]


@attrs.frozen
class _Position:
    """Where the keyset cursor reads next.

    Attributes:
        cursor: the timestamp keyed on (the request asks ``updatedAfter`` = this - 1 ms).
        page: the first page to ask for there: 2 when page 1 there is the page just read.
        previous: the identity (UIDs) of the page just read, when ``page`` continues it.
        skipped: the timestamp of a run just read whole, which the first page here must be
            past (else the server's bound is inclusive, and the cursor moves on again).
    """

    cursor: datetime | None
    page: int = 1
    previous: object = None
    skipped: datetime | None = None


@attrs.define
class _WindowReader:
    """Reads one :class:`_Window` page by page: the keyset cursor of the module docstring."""

    session: Dhis2Session
    query: EventQuery
    dialect: Dialect
    base: dict[str, ParamValue] = attrs.field(init=False)
    # One page decoder (and so one timestamp memo) for the whole read, all workers included.
    decode: Callable[[bytes], EventPage | None] = attrs.field(init=False)
    # How far past a run of identical timestamps the cursor moves: 1 ms asks updatedAfter = the
    # run's timestamp, right for a server whose bound is exclusive; 2 ms once one proved inclusive.
    _past_run: timedelta = attrs.field(default=_ONE_MS, init=False)

    def __attrs_post_init__(self) -> None:
        self.base = _params(self.query, self.dialect, self.session)
        self.decode = event_page_decoder(self.session.time_zone, self.dialect.events_keys)

    def __call__(self, window: _Window, split: SplitHook | None = None) -> Iterator[list[Event]]:
        """Yield the events of ``window`` a page at a time, after each page offering ``split``
        the chance to hand the rest of the slice beyond the cursor to another reader.

        A loop over cursor positions, not a second page loop: each position is read by the
        session's one :class:`PageLoop` (its stop rule, its repeated-page check), and the loop
        here only moves on to the position that reading returns.
        """
        position: _Position | None = _Position(window.cursor)
        while position is not None:
            position = yield from self._read_from(position, window, split)

    def _read_from(
        self, at: _Position, window: _Window, split: SplitHook | None
    ) -> Generator[list[Event], None, _Position | None]:
        """The pages at one cursor position, paged by offset while the cursor stays; returns
        where the cursor moves next, or None when the window is read."""
        size = self.query.page_size

        def fetch(number: int) -> tuple[JsonObject, list[Event]]:
            return self._get(at.cursor, window.end, number, size)

        pages = PageLoop(
            fetch,
            page_size=size,
            link_paging=self.dialect.next_page_link,
            path=self.dialect.events_path,
            start_page=at.page,
            identity=_uids,
            previous=at.previous,
        )
        skipped = at.skipped
        for page in pages:
            events = page.items
            first_stamp, last_stamp = events[0].updated_at, events[-1].updated_at
            if skipped is not None and first_stamp is not None and first_stamp <= skipped:
                self._past_run = 2 * _ONE_MS  # the server's updatedAfter is inclusive
                return _Position(skipped + self._past_run)
            skipped = None
            yield events
            if page.last:
                return None
            whole_page_one_stamp = page.number == 1 and first_stamp == last_stamp
            del page, events  # not held while the next page is read (docs/performance.md)
            run = self._whole_run(last_stamp) if whole_page_one_stamp else None
            if run is not None and last_stamp is not None:
                yield run
                moved: _Position | None = _Position(last_stamp + self._past_run, skipped=last_stamp)
            else:
                moved = _next_position(at.cursor, first_stamp, last_stamp, pages.previous)
            if split is not None and last_stamp is not None:
                split(window, last_stamp)
            if moved is not None:
                return moved
        return None

    def _whole_run(self, stamp: datetime | None) -> list[Event] | None:
        """A run of identical timestamps filling a whole page, read in one answer.

        Paged by offset, such a run loses events when one of it is edited during the read (the
        run shrinks, and later events shift onto pages already read). One answer of up to ten
        pages is one snapshot of the run; the cursor then keys past it. None when the page is
        timestamp, or the run is longer than ten pages (then it is paged by offset).
        """
        if stamp is None:
            return None
        limit = 10 * self.query.page_size
        _, events = self._get(stamp, stamp + _ONE_MS, 1, limit)
        if len(events) >= limit:
            return None
        return [e for e in events if e.updated_at == stamp]  # the query's bounds still hold

    def _get(
        self,
        cursor: datetime | None,
        end: datetime | None,
        page: int,
        page_size: int,
        *,
        order: str | None = None,
    ) -> tuple[JsonObject, list[Event]]:
        """One page: its paging keys, and the events updated from ``cursor`` (less 1 ms) up to
        ``end``, decoded straight into records (:func:`convert.event_page_decoder`)."""
        dialect, tz = self.dialect, self.session.time_zone
        params = dict(self.base)
        params.update(paging_params(page, page_size))
        params["order"] = order or dialect.order_updated
        params[dialect.updated_after_param] = _when(cursor - _ONE_MS, tz) if cursor else None
        if end is not None:
            params[dialect.updated_before_param] = _when(end, tz)
        got = self.session.get_decoded(dialect.events_path, params, self.decode)
        if got is None:
            raise ResponseFormatError(
                "expected a JSON object page", method="GET", path=dialect.events_path
            )
        if got.count < 0:
            raise ResponseFormatError(
                f"page has no list {dialect.events_keys[0]!r}",
                method="GET",
                path=dialect.events_path,
            )
        return got.paging, list(got.events)

    def edge(self, *, newest: bool) -> datetime | None:
        """The ``updatedAt`` of the oldest (or newest) matching event; None when none has one."""
        order = self.dialect.order_updated
        descending = order.rsplit(":", 1)[0] + ":desc"
        _, events = self._get(
            self.query.updated_after, None, 1, 1, order=descending if newest else order
        )
        return events[0].updated_at if events else None


# -- parallel reading ----------------------------------------------------------------------------
#
# The plan: the oldest and newest ``updatedAt`` of the query cut ``[oldest, newest)`` into one
# window per worker; every window is read by the keyset cursor, and a worker that runs out of
# windows gets the far half of a busy one (split between two pages), so a skewed program still
# keeps every worker busy. The tail ``[newest, ...)`` is read last, alone, once every other
# window is done: an event edited (or created) while the read runs gets a newer ``updatedAt``,
# so it lands in the tail, and the tail is read after the edit, exactly as the single cursor
# reads up to the end. Edited events already read come back in the tail and are dropped by
# the UID check of iter_events, as with one worker.


class _Stopped(Exception):
    """The consumer went away; a worker unwinds quietly."""


@attrs.define
class _Failure:
    """A worker's exception, re-raised in the consumer's thread."""

    error: Exception


class _Schedule:
    """Hands windows to workers; the tail only after every other window is done."""

    def __init__(self, windows: list[_Window], tail: _Window) -> None:
        self._lock = threading.Condition()
        self._pending = collections.deque(windows)
        self._tail: _Window | None = tail
        self._active = 0
        self._waiting = 0
        self.stopped = False

    def take(self) -> _Window | None:
        """The next window to read, waiting for a split if others are still reading; None
        when everything is read (or the read was stopped)."""
        with self._lock:
            while not self.stopped:
                if self._pending:
                    self._active += 1
                    return self._pending.popleft()
                if self._active == 0:
                    tail, self._tail = self._tail, None
                    if tail is not None:
                        self._active += 1
                    else:
                        self._lock.notify_all()  # everything is read: wake the waiting ones
                    return tail
                self._waiting += 1
                self._lock.wait()
                self._waiting -= 1
            return None

    def done(self) -> None:
        """A worker finished its window."""
        with self._lock:
            self._active -= 1
            self._lock.notify_all()

    def split(self, window: _Window, read_up_to: datetime) -> None:
        """Give the far half of ``window`` beyond ``read_up_to`` to a waiting worker, if any."""
        end = window.end
        if not self._waiting or self._pending or end is None:
            return  # a racy first look is fine: the decision is repeated under the lock
        half = (end - read_up_to) // 2 // _ONE_MS * _ONE_MS  # whole milliseconds, as DHIS2 keeps
        if half < _ONE_MS:
            return
        with self._lock:
            if self._waiting and not self._pending:
                middle = read_up_to + half
                self._pending.append(_Window(cursor=middle, end=end))
                window.end = middle
                self._lock.notify()

    def stop(self) -> None:
        """No more windows for anyone."""
        with self._lock:
            self.stopped = True
            self._lock.notify_all()


def _plan(read: _WindowReader, workers: int) -> tuple[list[_Window], _Window]:
    """Windows of ``[oldest, newest)`` equal in time, one per worker, and the tail."""
    whole = _Window(cursor=read.query.updated_after)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhis2-lmis-events") as pool:
        newest_of = pool.submit(read.edge, newest=True)  # both ends in one round trip
        oldest, newest = read.edge(newest=False), newest_of.result()
    if oldest is None or newest is None:
        return [], whole  # no events, or none with a timestamp: one cursor reads it all
    step = (newest - oldest) / workers // _ONE_MS * _ONE_MS
    bounds = sorted({oldest + step * n for n in range(1, workers)} - {oldest})
    edges = [*bounds, newest]
    windows = [_Window(cursor=read.query.updated_after, end=edges[0])]
    windows += [_Window(cursor=low, end=high) for low, high in itertools.pairwise(edges)]
    return windows, _Window(cursor=newest)


def _read_parallel(read: _WindowReader, workers: int) -> Iterator[list[Event]]:
    """Pages of every window, read by ``workers`` threads, handed over through a bounded queue.

    The first exception of any worker stops the others and is raised here, in the consumer's
    thread, after the pages read before it. When the consumer stops early (``break``,
    ``close()``, an exception, Ctrl-C), the workers finish the request they are in and end;
    this generator returns only when every thread has ended, so every connection is back in
    the session's pool.
    """
    read.session.reserve_connections(workers + 1)  # and one for look-ups by the consumer
    windows, tail = _plan(read, workers)
    schedule = _Schedule(windows, tail)
    results: queue.Queue[list[Event] | _Failure | None] = queue.Queue(maxsize=workers)
    gone = threading.Event()

    def hand_over(item: list[Event] | _Failure | None) -> None:
        while not gone.is_set():
            try:
                results.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
        raise _Stopped

    def work() -> None:
        try:
            while (window := schedule.take()) is not None:
                try:
                    for events in read(window, schedule.split):
                        if schedule.stopped:
                            raise _Stopped
                        hand_over(events)
                finally:
                    schedule.done()
            hand_over(None)
        except _Stopped:
            return
        except Exception as exc:  # any failure of a worker is the read's failure
            schedule.stop()
            with contextlib.suppress(_Stopped):
                hand_over(_Failure(exc))

    threads = [
        threading.Thread(target=work, name=f"dhis2-lmis-events-{n}", daemon=True)
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < workers:
            item = results.get()
            if item is None:
                finished += 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield item
    finally:
        gone.set()
        schedule.stop()
        for thread in threads:
            thread.join()


def _next_position(
    cursor: datetime | None,
    first_stamp: datetime | None,
    last_stamp: datetime | None,
    previous: object,
) -> _Position | None:
    """Where the cursor moves after a page keyed on its newest timestamp; None while the page
    loop pages on by offset at the same cursor. ``previous`` is the page's identity."""
    if last_stamp is None:
        return None  # no timestamps to key on: plain offset paging
    if cursor is not None and last_stamp <= cursor:
        return None  # inside a run of identical timestamps longer than a page
    if first_stamp == last_stamp:
        # The whole page shares one timestamp: keyed on it, page 1 would repeat this page.
        return _Position(last_stamp, 2, previous=previous)
    return _Position(last_stamp)


def _uids(events: list[Event]) -> list[str]:
    """What two event pages are compared by in the page loop's repeated-page check."""
    return list(map(_uid_of, events))


def iter_tracked_entities(
    session: Dhis2Session,
    params: Mapping[str, ParamValue],
    *,
    page_size: int,
) -> Iterator[TrackedEntityRef]:
    """Tracked entities (with attributes and enrollments) matching ``params``, page by page.

    The session's dialect names the endpoint, the envelope and the ``fields``. Used by the STR
    readers and the stock pusher.
    """
    dialect = session.dialect
    query = {"fields": dialect.tracked_entity_fields, **params}
    for page in session.iter_pages(
        dialect.tracked_entities_path,
        query,
        items_key=dialect.tracked_entities_key,
        page_size=page_size,
        link_paging=dialect.next_page_link,
    ):
        yield from tracked_entity_refs(page.items)
