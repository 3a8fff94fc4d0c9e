"""The converter: DHIS2 event JSON of any version -> :class:`~dhis2_lmis.models.Event`.

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
:class:`~dhis2_lmis.models.RecordProblem`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, tzinfo

import attrs
import cattrs
from dateutil import parser as date_parser

from dhis2_lmis._json import JsonObject, JsonValue
from dhis2_lmis.models import DataValue, Event, Note, RecordProblem

__all__ = [
    "current_username",
    "event_converter",
    "format_timestamp",
    "parse_timestamp",
    "structure_event",
    "tracked_entity_attributes",
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


def _text(raw: JsonObject, *keys: str) -> str | None:
    for key in keys:
        value = raw.get(key)
        if value is not None:
            return value if isinstance(value, str) else str(value)
    return None


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


def tracked_entity_attributes(body: JsonValue) -> Iterator[tuple[str, dict[str, str]]]:
    """``(tracked entity UID, {attribute: value})`` from a tracked-entities page of any version.

    2.36-2.40 list them under ``instances``, 2.41+ under ``trackedEntities``, the legacy API
    under ``trackedEntityInstances`` (with ``trackedEntityInstance`` as the UID key).
    """
    if not isinstance(body, dict):
        return
    for key in ("trackedEntities", "instances", "trackedEntityInstances"):
        entities = body.get(key)
        if isinstance(entities, list):
            break
    else:
        return
    for entity in entities:
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
        yield uid, values


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


def tracker_event_payload(
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
) -> JsonObject:
    """One event for ``POST /api/tracker`` (new names: ``occurredAt``, ``trackedEntity``).

    ``occurred_at`` is already formatted (server-local, no offset); values are strings, as DHIS2
    stores them.
    """
    return {
        "event": event,
        "program": program,
        "programStage": program_stage,
        "orgUnit": org_unit,
        "enrollment": enrollment,
        "trackedEntity": tracked_entity,
        "status": status,
        "occurredAt": occurred_at,
        "dataValues": [{"dataElement": de, "value": v} for de, v in data_values.items()],
    }


def legacy_event_payload(
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
) -> JsonObject:
    """The same event for the legacy ``POST /api/events`` (``eventDate``,
    ``trackedEntityInstance``; WEB_API.md §4.5, §5.5)."""
    return {
        "event": event,
        "program": program,
        "programStage": program_stage,
        "orgUnit": org_unit,
        "enrollment": enrollment,
        "trackedEntityInstance": tracked_entity,
        "status": status,
        "eventDate": occurred_at,
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
