"""EventQuery and iter_events(): version-adaptive, loss-free reading of program events.

Offset paging loses events when the program changes while it is read: an already-read event
that gets a newer ``updatedAt`` moves to the end, shifts every later event back by one, and an
unread event slips onto a page already read. So events are read by a keyset cursor on
``updatedAt``: each request asks for ``updatedAfter`` = the last timestamp seen (less one
millisecond, so an inclusive or exclusive server bound both work), ordered by ``updatedAt``
ascending, and events are de-duplicated by UID. Offset paging is used only inside a run of
identical timestamps longer than a page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Literal

import attrs

from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2.convert import (
    TrackedEntityRef,
    event_converter,
    format_timestamp,
    tracked_entity_refs,
)
from dhis2_lmis.dhis2.session import Dhis2Session, ParamValue, is_last_page
from dhis2_lmis.dhis2.versions import EventsDialect, events_dialect
from dhis2_lmis.errors import ResponseFormatError
from dhis2_lmis.lmis.models import Event

__all__ = ["EventQuery", "OrgUnitMode", "iter_events", "iter_tracked_entities"]

log = logging.getLogger(__name__)

OrgUnitMode = Literal["SELECTED", "CHILDREN", "DESCENDANTS", "ACCESSIBLE", "CAPTURE", "ALL"]
IdScheme = Literal["UID", "CODE"]

# What the library reads of an event: everything but relationships, which can be large.
_TRACKER_FIELDS = (
    "event,status,program,programStage,orgUnit,occurredAt,scheduledAt,createdAt,updatedAt,"
    "completedAt,completedBy,storedBy,attributeOptionCombo,enrollment,trackedEntity,deleted,"
    "dataValues[dataElement,value,providedElsewhere,storedBy,createdAt,updatedAt],"
    "notes[value,storedBy,storedAt]"
)
_ONE_MS = timedelta(milliseconds=1)


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
        occurred_after / occurred_before: the ``occurredAt`` window.
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
    page_size: int = attrs.field(default=500)
    data_element_id_scheme: IdScheme = "UID"

    @page_size.validator
    def _check_page_size(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"page_size must be at least 1, got {value}")


def _params(
    query: EventQuery, dialect: EventsDialect, session: Dhis2Session
) -> dict[str, ParamValue]:
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
        "includeDeleted": True if query.include_deleted else None,
        "order": dialect.order_updated,
        "pageSize": query.page_size,
    }
    if query.data_element_id_scheme != "UID":
        params["dataElementIdScheme"] = query.data_element_id_scheme
    if dialect.legacy:
        params["fields"] = "*"  # legacy default fields omit completedDate, storedBy, ...
    elif dialect.sends_fields:
        params["fields"] = _TRACKER_FIELDS
    return params


def _when(value: datetime | None, tz: tzinfo | None) -> str | None:
    return None if value is None else format_timestamp(value, tz)


def iter_events(
    session: Dhis2Session, query: EventQuery, *, legacy: bool = False
) -> Iterator[Event]:
    """Yield every event matching ``query`` exactly once, oldest update first.

    Memory stays flat apart from the set of UIDs already yielded (about 80 bytes per event).

    Args:
        session: the connection.
        query: what to read.
        legacy: read the pre-2.36 style ``/api/events`` (DHIS2 2.36-2.41 still have it).

    Raises:
        Dhis2Error subclasses from the session; ResponseFormatError for an unreadable page.
    """
    dialect = events_dialect(session.version, legacy=legacy)
    structure = event_converter(session.time_zone).get_structure_hook(Event)
    base = _params(query, dialect, session)
    tz = session.time_zone
    cursor = query.updated_after
    page = 1
    seen: set[str] = set()
    previous_items: list[JsonValue] | None = None
    while True:
        params = dict(base)
        params["page"] = page
        params[dialect.updated_after_param] = _when(cursor - _ONE_MS, tz) if cursor else None
        body = session.get_json(dialect.path, params)
        if not isinstance(body, dict):
            raise ResponseFormatError(
                "expected a JSON object page", method="GET", path=dialect.path
            )
        items = _page_items(body, dialect)
        if not items:
            return
        first_stamp = last_stamp = None
        for index, raw in enumerate(items):
            event = structure(raw, Event)
            if index == 0:
                first_stamp = event.updated_at
            last_stamp = event.updated_at
            if event.uid and event.uid in seen:
                continue
            if event.uid:
                seen.add(event.uid)
            yield event
        if is_last_page(body, len(items), query.page_size, page, dialect.next_page_link):
            return
        if page > 1 and items == previous_items:
            raise ResponseFormatError(
                f"page {page} repeats page {page - 1}: the server ignores paging here",
                method="GET",
                path=dialect.path,
            )
        previous_items = items
        cursor, page = _next_position(cursor, page, first_stamp, last_stamp)


def _next_position(
    cursor: datetime | None,
    page: int,
    first_stamp: datetime | None,
    last_stamp: datetime | None,
) -> tuple[datetime | None, int]:
    """Where the next request starts: key on the newest timestamp, or page within a tie."""
    if last_stamp is None:
        return cursor, page + 1  # no timestamps to key on: plain offset paging
    if cursor is not None and last_stamp <= cursor:
        return cursor, page + 1  # inside a run of identical timestamps longer than a page
    if first_stamp == last_stamp:
        # The whole page shares one timestamp: keyed on it, page 1 would repeat this page.
        return last_stamp, 2
    return last_stamp, 1


def _page_items(body: JsonObject, dialect: EventsDialect) -> list[JsonValue]:
    items = body.get(dialect.items_key)
    if items is None:
        # 2.41 answers ``events`` where older ones said ``instances``: accept either.
        items = body.get("events", body.get("instances", []))
    if not isinstance(items, list):
        raise ResponseFormatError(
            f"page has no list {dialect.items_key!r}", method="GET", path=dialect.path
        )
    return items


def iter_tracked_entities(
    session: Dhis2Session,
    params: Mapping[str, ParamValue],
    *,
    dialect: EventsDialect,
    page_size: int,
) -> Iterator[TrackedEntityRef]:
    """Tracked entities (with attributes and enrollments) matching ``params``, page by page.

    ``/api/tracker/trackedEntities`` on 2.36+, the legacy ``/api/trackedEntityInstances``
    before; the dialect names the envelope. Used by the STR readers and the stock pusher.
    """
    path = "trackedEntityInstances" if dialect.legacy else "tracker/trackedEntities"
    for page in session.iter_pages(
        path,
        params,
        items_key=dialect.tracked_entities_key,
        page_size=page_size,
        link_paging=dialect.next_page_link,
    ):
        yield from tracked_entity_refs(page.items)
