"""The converter: DHIS2 event JSON of any version -> :class:`~dhis2_lmis.lmis.models.Event`.

One structure function reads both spellings of every renamed field (``occurredAt`` /
``eventDate``, ``updatedAt`` / ``lastUpdated``, ``trackedEntity`` / ``trackedEntityInstance``
...; WEB_API.md §4.5), so the same converter serves ``/api/tracker/events`` on 2.36-2.43 and the
legacy ``/api/events``. Unknown keys are ignored (new servers add fields); missing optional
keys are fine.

DHIS2 writes timestamps in server-local time without an offset; they become timezone-aware in
the server's ``serverTimeZoneId`` when it is known, and stay naive otherwise.

The structure hook is written by hand rather than generated: it runs once per event on the
hottest path of the library, and ``datetime.fromisoformat`` with a ``dateutil`` fallback is
several times cheaper than a generic parse (STYLE.md §3, ``benchmarks/bench_fetch.py``).
It never raises on a bad field: the field becomes None and the event carries a
:class:`~dhis2_lmis.lmis.models.RecordProblem`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, tzinfo
from typing import TypeAlias

import attrs
import cattrs
from dateutil import parser as date_parser

from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.lmis.models import DataValue, Event, Note, RecordProblem

__all__ = [
    "DataValueRow",
    "EnrollmentRef",
    "TrackedEntityRef",
    "current_username",
    "data_value_rows",
    "data_value_set_header",
    "event_converter",
    "event_payload",
    "events_payload",
    "format_timestamp",
    "job_completed",
    "org_unit_refs",
    "parse_timestamp",
    "structure_event",
    "timestamp_parser",
    "tracked_entity_refs",
]


def parse_timestamp(text: str, time_zone: tzinfo | None = None) -> datetime:
    """Parse a DHIS2 timestamp; a value without offset is placed in ``time_zone``.

    Raises:
        ValueError: the text is not a date or timestamp.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = date_parser.isoparse(text)
    if value.tzinfo is None and time_zone is not None:
        value = value.replace(tzinfo=time_zone)
    return value


def format_timestamp(value: datetime, time_zone: tzinfo | None = None) -> str:
    """Format a datetime the way DHIS2 query parameters expect: server-local, no offset."""
    if value.tzinfo is not None and time_zone is not None:
        value = value.astimezone(time_zone)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds")


def current_username(me: JsonValue) -> str | None:
    """The username in an ``/api/me`` answer: top-level from 2.38, ``userCredentials`` before."""
    if not isinstance(me, dict):
        return None
    username = _text(me, "username")
    credentials = me.get("userCredentials")
    if username is None and isinstance(credentials, dict):
        username = _text(credentials, "username")
    return username


def _text(raw: JsonObject, key: str, *fallbacks: str) -> str | None:
    value = raw.get(key)
    if value is None:
        for other in fallbacks:
            value = raw.get(other)
            if value is not None:
                break
        else:
            return None
    return value if type(value) is str else str(value)


def _user(raw: JsonObject, key: str) -> str | None:
    """A user reference: a username string (<=2.37) or an object (2.38+)."""
    value = raw.get(key)
    if isinstance(value, dict):
        return _text(value, "username", "uid", "displayName")
    return value if isinstance(value, str) else None


class _Timestamps:
    """Parses timestamps, remembering recent ones.

    The values of an event are usually saved together, so their ``createdAt``/``updatedAt``
    repeat within an event and across a page; a dictionary hit costs a twentieth of a parse.
    """

    __slots__ = ("cache", "time_zone")

    _LIMIT = 4096

    def __init__(self, time_zone: tzinfo | None) -> None:
        self.time_zone = time_zone
        self.cache: dict[str, datetime] = {}

    def parse(self, text: str) -> datetime:
        value = self.cache.get(text)
        if value is None:
            value = parse_timestamp(text, self.time_zone)
            if len(self.cache) >= self._LIMIT:
                self.cache.clear()
            self.cache[text] = value
        return value


class _EventReader:
    """Structures one event; collects the problems of its fields."""

    __slots__ = ("problems", "raw", "timestamps")

    def __init__(self, raw: JsonObject, timestamps: _Timestamps) -> None:
        self.raw = raw
        self.timestamps = timestamps
        self.problems: list[RecordProblem] = []

    def when(self, source: JsonObject, key: str, legacy_key: str) -> datetime | None:
        text = source.get(key)
        if text is None:
            text = source.get(legacy_key)
            if text is None:
                return None
        if type(text) is str:
            known = self.timestamps.cache.get(text)
            if known is not None:
                return known
        try:
            return self.timestamps.parse(text)  # type: ignore[arg-type]  # checked below
        except (ValueError, OverflowError, TypeError):
            self.problems.append(
                RecordProblem("malformed", f"{key} is not a timestamp: {text!r}", str(text))
            )
            return None

    def data_values(self) -> tuple[DataValue, ...]:
        # The hottest loop of the library (8+ values per event): lookups are bound to locals
        # and timestamps are read from the memo before falling back to a full parse.
        raw_values = self.raw.get("dataValues")
        if not isinstance(raw_values, list) or not raw_values:
            return ()
        memo = self.timestamps.cache.get
        when = self.when
        values: list[DataValue] = []
        append = values.append
        for item in raw_values:
            get = item.get if type(item) is dict else None
            data_element = get("dataElement") if get is not None else None
            if type(data_element) is not str or get is None:
                self.problems.append(
                    RecordProblem("malformed", f"a data value has no data element: {item!r}")
                )
                continue
            value = get("value")
            if value is not None and type(value) is not str:
                value = str(value)
            stored_by = get("storedBy")
            created = get("createdAt") or get("created")
            updated = get("updatedAt") or get("lastUpdated")
            created_at = memo(created) if type(created) is str else None
            if created_at is None and created is not None:
                created_at = when(item, "createdAt", "created")  # type: ignore[arg-type]
            updated_at = memo(updated) if type(updated) is str else None
            if updated_at is None and updated is not None:
                updated_at = when(item, "updatedAt", "lastUpdated")  # type: ignore[arg-type]
            append(
                DataValue(
                    data_element,
                    value,
                    get("providedElsewhere") is True,
                    stored_by if type(stored_by) is str else None,
                    created_at,
                    updated_at,
                )
            )
        return tuple(values)

    def notes(self) -> tuple[Note, ...]:
        raw_notes = self.raw.get("notes")
        if not isinstance(raw_notes, list) or not raw_notes:
            return ()
        return tuple(
            Note(
                value=_text(note, "value") or "",
                stored_by=_text(note, "storedBy"),
                stored_at=self.when(note, "storedAt", "storedDate"),
            )
            for note in raw_notes
            if isinstance(note, dict)
        )

    def event(self) -> Event:
        raw = self.raw
        uid = _text(raw, "event")
        if not uid:
            self.problems.append(RecordProblem("malformed", "the event has no UID"))
        when = self.when
        return Event(
            uid=uid or "",
            program=_text(raw, "program"),
            program_stage=_text(raw, "programStage"),
            org_unit=_text(raw, "orgUnit"),
            status=_text(raw, "status"),
            occurred_at=when(raw, "occurredAt", "eventDate"),
            scheduled_at=when(raw, "scheduledAt", "dueDate"),
            created_at=when(raw, "createdAt", "created"),
            updated_at=when(raw, "updatedAt", "lastUpdated"),
            completed_at=when(raw, "completedAt", "completedDate"),
            completed_by=_user(raw, "completedBy"),
            stored_by=_user(raw, "storedBy"),
            attribute_option_combo=_text(raw, "attributeOptionCombo"),
            enrollment=_text(raw, "enrollment"),
            tracked_entity=_text(raw, "trackedEntity", "trackedEntityInstance"),
            deleted=raw.get("deleted") is True,
            data_values=self.data_values(),
            notes=self.notes(),
            problems=tuple(self.problems),
        )


def structure_event(raw: JsonValue, time_zone: tzinfo | None = None) -> Event:
    """Turn one event of any DHIS2 version into an :class:`Event`; never raises."""
    return _structure(raw, _Timestamps(time_zone))


def _structure(raw: JsonValue, timestamps: _Timestamps) -> Event:
    if not isinstance(raw, dict):
        problem = RecordProblem("malformed", f"expected an event object, got {type(raw).__name__}")
        return Event(uid="", problems=(problem,))
    return _EventReader(raw, timestamps).event()


def event_converter(time_zone: tzinfo | None = None) -> cattrs.Converter:
    """A cattrs converter for one read from a server in ``time_zone``.

    Cheap to build (the event hook is hand-written); each read builds its own, so the
    timestamp memory it carries never outlives the read.
    """
    converter = cattrs.Converter()
    timestamps = _Timestamps(time_zone)

    def hook(raw: JsonValue, _: type[Event]) -> Event:
        return _structure(raw, timestamps)

    converter.register_structure_hook(Event, hook)
    return converter


# --------------------------------------------------------------------------- STR look-ups, writes


@attrs.frozen
class EnrollmentRef:
    """An enrollment as a tracked-entity look-up lists it (UID, program, status, org unit)."""

    uid: str
    program: str | None
    status: str | None
    org_unit: str | None


@attrs.frozen
class TrackedEntityRef:
    """A tracked entity as a look-up lists it: UID, owner org unit, attributes, enrollments."""

    uid: str
    org_unit: str | None
    attributes: Mapping[str, str]
    enrollments: tuple[EnrollmentRef, ...]


def tracked_entity_refs(items: Iterable[JsonValue]) -> Iterator[TrackedEntityRef]:
    """Tracked entities with their enrollments from the items of a look-up page.

    Reads ``/api/tracker/trackedEntities`` items (``trackedEntity``) and legacy
    ``/api/trackedEntityInstances`` items (``trackedEntityInstance``); items without a UID are
    skipped. Never raises.
    """
    for entity in items:
        if not isinstance(entity, dict):
            continue
        uid = _text(entity, "trackedEntity", "trackedEntityInstance")
        if not uid:
            continue
        values: dict[str, str] = {}
        attributes = entity.get("attributes")
        for attribute in attributes if isinstance(attributes, list) else ():
            if isinstance(attribute, dict):
                name, value = _text(attribute, "attribute"), _text(attribute, "value")
                if name and value is not None:
                    values[name] = value
        enrollments = []
        raw_enrollments = entity.get("enrollments")
        for raw in raw_enrollments if isinstance(raw_enrollments, list) else ():
            if not isinstance(raw, dict) or raw.get("deleted") is True:
                continue
            enrollment_uid = _text(raw, "enrollment")
            if enrollment_uid:
                enrollments.append(
                    EnrollmentRef(
                        uid=enrollment_uid,
                        program=_text(raw, "program"),
                        status=_text(raw, "status"),
                        org_unit=_text(raw, "orgUnit"),
                    )
                )
        yield TrackedEntityRef(uid, _text(entity, "orgUnit"), values, tuple(enrollments))


def event_payload(
    *,
    event: str,
    program: str,
    program_stage: str,
    org_unit: str,
    enrollment: str,
    tracked_entity: str,
    occurred_at: str,
    data_values: Mapping[str, str],
    status: str = "COMPLETED",
    legacy: bool = False,
) -> JsonObject:
    """One event to write: new tracker names for ``POST /api/tracker`` (``occurredAt``,
    ``trackedEntity``), or with ``legacy`` the old names ``POST /api/events`` reads
    (``eventDate``, ``trackedEntityInstance``; WEB_API.md §4.5, §5.5).

    ``occurred_at`` is already formatted (server-local, no offset); values are strings, as DHIS2
    stores them.
    """
    return {
        "event": event,
        "program": program,
        "programStage": program_stage,
        "orgUnit": org_unit,
        "enrollment": enrollment,
        "trackedEntityInstance" if legacy else "trackedEntity": tracked_entity,
        "status": status,
        "eventDate" if legacy else "occurredAt": occurred_at,
        "dataValues": [{"dataElement": de, "value": v} for de, v in data_values.items()],
    }


def events_payload(events: Iterable[JsonObject]) -> JsonObject:
    """The ``{"events": [...]}`` body both ``/api/tracker`` and ``/api/events`` accept."""
    return {"events": list(events)}


def job_completed(body: JsonValue) -> bool:
    """Whether a ``GET /api/tracker/jobs/{id}`` answer says the job is done.

    The answer is a list of notifications, newest first; the job is done when the newest has
    ``completed: true``. Anything else (an empty list, an unexpected shape) means not yet.
    """
    if isinstance(body, list) and body:
        newest = body[0]
        return isinstance(newest, dict) and newest.get("completed") is True
    return False


# --------------------------------------------------------------------- aggregate data value sets

DataValueRow: TypeAlias = tuple[
    str | None, str | None, str | None, str | None, str | None, str | None, str | None
]
"""One data value of a ``GET /api/dataValueSets`` answer, as text:
``(org_unit, period, data_element, category_option_combo, value, last_updated,
attribute_option_combo)``.

A plain tuple because a month of a national data set is hundreds of thousands of values: the
reader groups and converts them, and a record per row would only be thrown away.
"""


def data_value_set_header(body: JsonValue) -> tuple[str | None, str | None, str | None]:
    """``(period, org_unit, complete_date)`` named at the top of a data value set, if any.

    DHIS2 writes them only when the request named one data set, one period and one org unit
    without children (2.28, 2.41 recordings); answers for date ranges or several org units are
    a bare ``{"dataValues": [...]}`` (2.36, 2.37, 2.40 recordings). ``completeDate`` is a date
    in some versions and a timestamp in others; it is returned as sent.
    """
    if not isinstance(body, dict):
        return None, None, None
    return _text(body, "period"), _text(body, "orgUnit"), _text(body, "completeDate")


def data_value_rows(body: JsonValue) -> Iterator[DataValueRow]:
    """Every data value of a ``GET /api/dataValueSets`` answer of any version; never raises.

    Reads ``{"dataValues": [...]}`` with or without the top-level ``dataSet``, ``period`` and
    ``orgUnit`` (a value without its own period or org unit takes the top-level one), an
    answer with no ``dataValues`` key (no data), and a bare JSON list of values. Values are
    text, as DHIS2 stores them; a number sent unquoted becomes its text. An entry that is not
    an object yields a row of Nones, so the reader can report it rather than lose it.
    """
    top_period = top_org_unit = top_aoc = None
    if isinstance(body, dict):
        values = body.get("dataValues")
        top_period, top_org_unit = _text(body, "period"), _text(body, "orgUnit")
        top_aoc = _text(body, "attributeOptionCombo")
    else:
        values = body
    if not isinstance(values, list):
        return
    for raw in values:
        if type(raw) is not dict:
            yield (top_org_unit, top_period, None, None, None, None, top_aoc)
            continue
        get = raw.get
        org_unit, period, element = get("orgUnit"), get("period"), get("dataElement")
        combo, value, updated = get("categoryOptionCombo"), get("value"), get("lastUpdated")
        aoc = get("attributeOptionCombo")
        yield (
            org_unit if type(org_unit) is str else _or_text(org_unit, top_org_unit),
            period if type(period) is str else _or_text(period, top_period),
            element if type(element) is str else _or_text(element, None),
            combo if type(combo) is str else _or_text(combo, None),
            value if type(value) is str else _or_text(value, None),
            updated if type(updated) is str else _or_text(updated, None),
            aoc if type(aoc) is str else _or_text(aoc, top_aoc),
        )


def _or_text(value: JsonValue, default: str | None) -> str | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # a number sent unquoted: 5 -> "5", as DHIS2 would have quoted it


def org_unit_refs(body: JsonValue) -> Iterator[tuple[str, str | None, str | None]]:
    """``(uid, code, path)`` of each org unit under ``organisationUnits``; never raises.

    The same key carries the user's roots in ``/api/me``, a data set's assigned org units in
    ``/api/dataSets/<uid>`` and the page of an ``/api/organisationUnits`` list, so one reader
    serves all three. Entries without an ``id`` are skipped.
    """
    if not isinstance(body, dict):
        return
    units = body.get("organisationUnits")
    for unit in units if isinstance(units, list) else ():
        if isinstance(unit, dict):
            uid = _text(unit, "id")
            if uid:
                yield uid, _text(unit, "code"), _text(unit, "path")


def timestamp_parser(time_zone: tzinfo | None = None) -> Callable[[str], datetime]:
    """A memoising :func:`parse_timestamp` for one read.

    Values saved together share their ``lastUpdated``, so most parses are dictionary hits.

    Raises (from the returned callable):
        ValueError: the text is not a date or timestamp.
    """
    return _Timestamps(time_zone).parse
