"""The converter: DHIS2 event JSON of any version -> :class:`~dhis2_lmis.dhis2.records.Event`.

Event pages are decoded by msgspec straight into private wire structures (``_WireEvent``,
``_WireValue``) that name both spellings of every renamed field (``occurredAt`` /
``eventDate``, ``updatedAt`` / ``lastUpdated``, ``trackedEntity`` / ``trackedEntityInstance``
...; WEB_API.md §4.5), so one decoder serves ``/api/tracker/events`` on 2.36-2.43 and the
legacy ``/api/events``. Unknown keys are skipped without being built (new servers add fields);
missing keys are fine. The records of a page are built from the wire structures in one
msgspec call (:func:`_records`); :func:`structure_event` converts an already-decoded event into
the same structures first, so both paths build identical records.

DHIS2 writes timestamps in server-local time without an offset. msgspec parses them while it
decodes the page (in C, far cheaper than a parse per text in Python); they then become
timezone-aware in the server's ``serverTimeZoneId`` when it is known, and stay naive
otherwise. A memo per read makes each distinct timestamp aware once. A page with a timestamp
msgspec cannot read (a date alone, ``"yesterday"``, a number) is decoded again with every
timestamp as text, and those texts are parsed one by one, so the odd one becomes a problem on
its record instead of failing the page.

Conversion never raises on a bad field: the wire fields accept any JSON, the field becomes
None (or its text, for a number sent where text belongs) and the event carries a
:class:`~dhis2_lmis.dhis2.records.RecordProblem`. Why msgspec, and what it costs:
docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, TypeAlias, Union

import attrs
import msgspec
from dateutil import parser as date_parser

from dhis2_lmis.dhis2 import _json
from dhis2_lmis.dhis2._json import JsonObject, JsonValue, as_text
from dhis2_lmis.dhis2.records import Event, RecordProblem

__all__ = [
    "JOB_REPORT_PARAMS",
    "ME_FIELDS",
    "EnrollmentRef",
    "EventPage",
    "TrackedEntityRef",
    "current_username",
    "event_page_decoder",
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


ME_FIELDS = "id,username,userCredentials[username]"
"""``/api/me`` as :func:`current_username` reads it, on every version (both places asked)."""


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
    return as_text(value)


class _Timestamps:
    """Makes timestamps timezone-aware (and parses texts), remembering recent ones.

    The values of an event are usually saved together, so their ``createdAt``/``updatedAt``
    repeat within an event and across a page; a dictionary hit is cheaper than a new aware
    datetime, and the repeats share one object. The memo maps a text (lenient pages) or a
    datetime as msgspec decoded it to the record's datetime.
    """

    __slots__ = ("cache", "time_zone")

    _LIMIT = 4096

    def __init__(self, time_zone: tzinfo | None) -> None:
        self.time_zone = time_zone
        self.cache: dict[str | datetime, datetime] = {}

    def _remember(self, key: str | datetime, value: datetime) -> datetime:
        if len(self.cache) >= self._LIMIT:
            self.cache.clear()
        self.cache[key] = value
        return value

    def parse(self, text: str) -> datetime:
        value = self.cache.get(text)
        if value is None:
            value = self._remember(text, parse_timestamp(text, self.time_zone))
        return value

    def aware(self, value: datetime) -> datetime:
        """A decoded timestamp in the server's zone (one without an offset is placed in it).

        One sent with an offset is kept as sent and not remembered: it equals every other
        spelling of its instant, which the memo would otherwise hand out in its place.
        """
        if value.tzinfo is not None:
            return value
        zone = self.time_zone
        return self._remember(value, value if zone is None else value.replace(tzinfo=zone))

    def when(self, text: Any, key: str, problems: list[RecordProblem]) -> datetime | None:
        """A record's timestamp field: None when absent; a problem, and None, when malformed."""
        if text is None:
            return None
        if type(text) is str:
            known = self.cache.get(text)
            if known is not None:
                return known
        try:
            return self.parse(text)
        except (ValueError, OverflowError, TypeError):
            problems.append(
                RecordProblem("malformed", f"{key} is not a timestamp: {text!r}", str(text))
            )
            return None


# The wire shapes of an event page. Both spellings of every renamed key are fields (the
# decoder picks out only these keys and skips the rest without building them). Scalars are
# ``Any`` and lists accept any JSON in their place: types are checked when the record is
# built, so an odd value becomes a problem on its record, never a page that fails to decode.
_Scalar: TypeAlias = Union[str, int, float, bool, None]  # noqa: UP007
_NotObject: TypeAlias = Union[list[Any], _Scalar]  # noqa: UP007


class _WireValue(msgspec.Struct, rename="camel", gc=False):
    # Named as DataValue's attributes: msgspec builds the records from them (_records).
    data_element: Any = None
    value: Any = None
    provided_elsewhere: Any = False
    stored_by: Any = None
    created_at: Any = None
    created: Any = None  # <= 2.40 and legacy /api/events
    updated_at: Any = None
    last_updated: Any = None


class _WireNote(msgspec.Struct, rename="camel", gc=False):
    value: Any = None
    stored_by: Any = None
    stored_at: Any = None
    stored_date: Any = None


class _WireEvent(msgspec.Struct, rename="camel", gc=False):
    # Named as Event's attributes where a field is read as is (``uid`` is DHIS2's ``event``):
    # msgspec builds the records of a page from them in one call (_records).
    uid: Any = msgspec.field(default=None, name="event")
    program: Any = None
    program_stage: Any = None
    org_unit: Any = None
    status: Any = None
    occurred_at: Any = None
    event_date: Any = None
    scheduled_at: Any = None
    due_date: Any = None
    created_at: Any = None
    created: Any = None
    updated_at: Any = None
    last_updated: Any = None
    completed_at: Any = None
    completed_date: Any = None
    completed_by: Any = None
    stored_by: Any = None
    attribute_option_combo: Any = None
    enrollment: Any = None
    tracked_entity: Any = None
    tracked_entity_instance: Any = None
    deleted: Any = False
    data_values: Union[list[Union[_WireValue, _NotObject]], dict[str, Any], _Scalar] = (  # noqa: UP007
        msgspec.field(default_factory=list)
    )
    notes: Union[list[Union[_WireNote, _NotObject]], dict[str, Any], _Scalar] = (  # noqa: UP007
        msgspec.field(default_factory=list)
    )


_WireItem: TypeAlias = Union[_WireEvent, _NotObject]  # noqa: UP007
_WireItems: TypeAlias = Union[list[_WireItem], dict[str, Any], _Scalar]  # noqa: UP007


class _WirePage(msgspec.Struct, gc=False):
    """Every events envelope: ``instances`` (tracker <= 2.40), ``events`` (2.41+, legacy)."""

    events: _WireItems = None
    instances: _WireItems = None
    pager: Any = None


_page_decoder = msgspec.json.Decoder(Union[_WirePage, _NotObject])  # noqa: UP007

# The typed twins of the wire shapes, the decoder every page is tried with first: msgspec
# parses the timestamps (RFC 3339, with or without an offset) as it decodes. Any other value in
# a timestamp field fails the whole page, which is then decoded with the lenient shapes above.
_Stamp: TypeAlias = datetime | None


class _TypedValue(_WireValue):
    created_at: _Stamp = None
    created: _Stamp = None
    updated_at: _Stamp = None
    last_updated: _Stamp = None


class _TypedNote(_WireNote):
    stored_at: _Stamp = None
    stored_date: _Stamp = None


_TypedValues: TypeAlias = Union[list[Union[_TypedValue, _NotObject]], dict[str, Any], _Scalar]  # noqa: UP007
_TypedNotes: TypeAlias = Union[list[Union[_TypedNote, _NotObject]], dict[str, Any], _Scalar]  # noqa: UP007


class _TypedEvent(_WireEvent):
    occurred_at: _Stamp = None
    event_date: _Stamp = None
    scheduled_at: _Stamp = None
    due_date: _Stamp = None
    created_at: _Stamp = None
    created: _Stamp = None
    updated_at: _Stamp = None
    last_updated: _Stamp = None
    completed_at: _Stamp = None
    completed_date: _Stamp = None
    # Lists of the typed value and note shapes where the base has the lenient ones: lists are
    # invariant for mypy, but msgspec reads these annotations to choose what to build.
    data_values: _TypedValues = msgspec.field(default_factory=list)  # type: ignore[assignment]
    notes: _TypedNotes = msgspec.field(default_factory=list)  # type: ignore[assignment]


_TypedItems: TypeAlias = Union[list[Union[_TypedEvent, _NotObject]], dict[str, Any], _Scalar]  # noqa: UP007


class _TypedPage(_WirePage):
    events: _TypedItems = None  # type: ignore[assignment]  # as _TypedEvent.data_values
    instances: _TypedItems = None  # type: ignore[assignment]


_typed_page_decoder = msgspec.json.Decoder(Union[_TypedPage, _NotObject])  # noqa: UP007


@attrs.frozen
class EventPage:
    """One page of events, decoded.

    Attributes:
        count: how many entries the page's list holds; -1 when it has no list of events.
        events: the records, in page order, built together (one msgspec call per page).
        paging: the envelope's paging keys (``pager``), for
            :func:`~dhis2_lmis.dhis2.session.is_last_page`.
    """

    count: int
    events: Iterator[Event] = attrs.field(repr=False)
    paging: JsonObject


def event_page_decoder(
    time_zone: tzinfo | None, items_keys: Sequence[str]
) -> Callable[[bytes], EventPage | None]:
    """A decoder of the event pages of one read, for :meth:`Dhis2Session.get_decoded`.

    It decodes a page straight into wire structures and builds the records from them, with
    one timestamp memory for the whole read. The list is read from the first of ``items_keys``
    (the dialect's envelope keys, expected one first) the page has. Returns None for a body
    that is not a JSON object.

    Raises (from the returned callable):
        ValueError: the body is not JSON.
    """
    timestamps = _Timestamps(time_zone)

    def decode(content: bytes) -> EventPage | None:
        page: _WirePage | _NotObject
        lenient = False
        try:
            page = _typed_page_decoder.decode(content)
        except msgspec.DecodeError:  # an odd timestamp, or not JSON (the retry says which)
            page, lenient = _json.decode(_page_decoder, content), True
        if not isinstance(page, _WirePage):
            return None
        items = next((v for k in items_keys if (v := getattr(page, k, None)) is not None), None)
        paging: JsonObject = {} if page.pager is None else {"pager": page.pager}
        if items is None:
            items = []
        if type(items) is not list:
            return EventPage(-1, iter(()), paging)
        return EventPage(len(items), iter(_records(items, timestamps, lenient)), paging)

    return decode


def structure_event(raw: JsonValue, time_zone: tzinfo | None = None) -> Event:
    """Turn one already-decoded event of any DHIS2 version into an :class:`Event`; never raises.

    Goes through the same wire structure as a decoded page, so both build identical records.
    """
    try:
        wire = msgspec.convert(raw, _WireItem)
    except msgspec.ValidationError as exc:  # only a dict with non-text keys gets here
        problem = RecordProblem("malformed", f"the event could not be read: {exc}")
        return Event(uid="", problems=(problem,))
    return _records([wire], _Timestamps(time_zone), lenient=True)[0]


def _user(value: Any) -> str | None:
    """A user reference: a username string (<=2.37) or an object (2.38+)."""
    if isinstance(value, dict):
        return _text(value, "username", "uid", "displayName")
    return value if type(value) is str else None


_EVENTS = list[Event]  # built once: msgspec looks its plan up by this object


def _records(items: list[_WireItem], timestamps: _Timestamps, lenient: bool) -> list[Event]:
    """The records of a page's wire events, in page order; never raises.

    A pass in Python makes each event's decoded timestamps timezone-aware (from the memo; a new
    datetime only on a miss) and settles the renamed keys; msgspec then builds every record of
    the page, data values and notes included, from the wire structures' like-named attributes
    in one call, in C. The events of a ``lenient`` page (decoded with every timestamp as text)
    first have their texts parsed (:func:`_typed`). Only a page with an odd value (a number
    for text, a user object, an entry that is not an object) has its events built one by one,
    each repaired first; problems found on the way (a bad timestamp, no UID) are added to
    their records afterwards.
    """
    problems: dict[int, list[RecordProblem]] = {}
    if lenient:
        for index, item in enumerate(items):
            if type(item) is _WireEvent:
                found: list[RecordProblem] = []
                items[index] = _typed(item, timestamps, found)
                if found:
                    problems[index] = found
    _settle(items, timestamps, problems)
    try:
        records = msgspec.convert(items, _EVENTS, from_attributes=True)
    except msgspec.ValidationError:
        records = [_repaired_event(w, problems.setdefault(i, [])) for i, w in enumerate(items)]
    for index, found in problems.items():
        if found:
            records[index] = attrs.evolve(records[index], problems=tuple(found))
    return records


_NO_UID = RecordProblem("malformed", "the event has no UID")


def _settle(
    items: list[_WireItem], timestamps: _Timestamps, problems: dict[int, list[RecordProblem]]
) -> None:
    """Give a page's typed wire events their records' timestamps and keys, in place; an event
    without a UID gets a problem.

    Each timestamp is asked of the memo inline (a call to ``aware`` only on a miss): this loop
    is the hottest code of the library, so it runs once per page with its look-ups bound once.
    A datetime is never falsy, so ``or`` picks the spelling the server used.
    """
    known, aware = timestamps.cache.get, timestamps.aware
    for index, wire in enumerate(items):
        if type(wire) is not _TypedEvent:
            continue
        if not wire.uid:
            problems.setdefault(index, []).append(_NO_UID)
        stamp = wire.occurred_at or wire.event_date
        if stamp is not None:
            wire.occurred_at = known(stamp) or aware(stamp)
        stamp = wire.scheduled_at or wire.due_date
        if stamp is not None:
            wire.scheduled_at = known(stamp) or aware(stamp)
        stamp = wire.created_at or wire.created
        if stamp is not None:
            wire.created_at = known(stamp) or aware(stamp)
        stamp = wire.updated_at or wire.last_updated
        if stamp is not None:
            wire.updated_at = known(stamp) or aware(stamp)
        stamp = wire.completed_at or wire.completed_date
        if stamp is not None:
            wire.completed_at = known(stamp) or aware(stamp)
        if wire.tracked_entity is None:
            wire.tracked_entity = wire.tracked_entity_instance
        values = wire.data_values
        if type(values) is list:
            for item in values:
                if type(item) is _TypedValue:
                    stamp = item.created_at or item.created
                    if stamp is not None:
                        item.created_at = known(stamp) or aware(stamp)
                    stamp = item.updated_at or item.last_updated
                    if stamp is not None:
                        item.updated_at = known(stamp) or aware(stamp)
        notes = wire.notes
        if type(notes) is list:
            for note in notes:
                if type(note) is _TypedNote:
                    stamp = note.stored_at or note.stored_date
                    note.stored_at = None if stamp is None else known(stamp) or aware(stamp)
                    note.value = as_text(note.value) or ""
                    note.stored_by = as_text(note.stored_by)


# Every timestamp field of the wire shapes and its name in DHIS2's JSON (for the problem).
_EVENT_STAMPS = (
    ("occurred_at", "occurredAt"),
    ("event_date", "eventDate"),
    ("scheduled_at", "scheduledAt"),
    ("due_date", "dueDate"),
    ("created_at", "createdAt"),
    ("created", "created"),
    ("updated_at", "updatedAt"),
    ("last_updated", "lastUpdated"),
    ("completed_at", "completedAt"),
    ("completed_date", "completedDate"),
)
_VALUE_STAMPS = (
    ("created_at", "createdAt"),
    ("created", "created"),
    ("updated_at", "updatedAt"),
    ("last_updated", "lastUpdated"),
)
_NOTE_STAMPS = (("stored_at", "storedAt"), ("stored_date", "storedDate"))


def _typed(wire: _WireEvent, timestamps: _Timestamps, problems: list[RecordProblem]) -> _TypedEvent:
    """A lenient page's event as the typed decoder would have made it.

    Each timestamp text is parsed on its own; one that is not a timestamp becomes None and a
    problem, and the other spelling of the field, if the server sent both, still counts.
    """
    _parse_stamps(wire, _EVENT_STAMPS, timestamps, problems)
    for item in wire.data_values if type(wire.data_values) is list else ():
        if type(item) is _WireValue:
            _parse_stamps(item, _VALUE_STAMPS, timestamps, problems)
    for note in wire.notes if type(wire.notes) is list else ():
        if type(note) is _WireNote:
            _parse_stamps(note, _NOTE_STAMPS, timestamps, problems)
    # Through DHIS2's names (msgspec before 0.18.6 reads a structure's attributes by their
    # JSON names), datetimes kept as they are.
    plain = msgspec.to_builtins(wire, builtin_types=(datetime,))
    return msgspec.convert(plain, _TypedEvent)


def _parse_stamps(
    wire: object,
    fields: Sequence[tuple[str, str]],
    timestamps: _Timestamps,
    problems: list[RecordProblem],
) -> None:
    for field, key in fields:
        text = getattr(wire, field)
        if text is not None:
            setattr(wire, field, timestamps.when(text, key, problems))


def _repaired_event(wire: _WireItem, problems: list[RecordProblem]) -> Event:
    """The record of one settled wire event of an odd page, its odd fields repaired."""
    if type(wire) is not _TypedEvent:
        kind = "null" if wire is None else type(wire).__name__
        problems.append(RecordProblem("malformed", f"expected an event object, got {kind}"))
        return Event(uid="")
    try:
        return msgspec.convert(wire, Event, from_attributes=True)
    except msgspec.ValidationError:
        pass
    wire.uid = as_text(wire.uid) or ""
    wire.program = as_text(wire.program)
    wire.program_stage = as_text(wire.program_stage)
    wire.org_unit = as_text(wire.org_unit)
    wire.status = as_text(wire.status)
    wire.completed_by = _user(wire.completed_by)
    wire.stored_by = _user(wire.stored_by)
    wire.attribute_option_combo = as_text(wire.attribute_option_combo)
    wire.enrollment = as_text(wire.enrollment)
    wire.tracked_entity = as_text(wire.tracked_entity)
    wire.deleted = wire.deleted is True
    values = wire.data_values
    wire.data_values = (
        [item for item in values if _repaired(item, problems)] if type(values) is list else []
    )
    notes = wire.notes
    wire.notes = [note for note in notes if type(note) is _TypedNote] if type(notes) is list else []
    return msgspec.convert(wire, Event, from_attributes=True)


def _repaired(item: object, problems: list[RecordProblem]) -> bool:
    """Make an odd wire data value fit its record, or report why it has none."""
    if type(item) is not _TypedValue:
        problems.append(RecordProblem("malformed", f"a data value is not an object: {item!r}"))
        return False
    if type(item.data_element) is not str:
        problems.append(
            RecordProblem("malformed", f"a data value has no data element (value {item.value!r})")
        )
        return False
    item.value = as_text(item.value)
    item.provided_elsewhere = item.provided_elsewhere is True
    if type(item.stored_by) is not str:
        item.stored_by = None
    return True


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


JOB_REPORT_PARAMS: Mapping[str, str] = {"reportMode": "ERRORS"}
"""The query of ``GET /api/tracker/jobs/{id}/report``: the errors of each record, not the
full report."""


def job_completed(body: JsonValue) -> bool:
    """Whether a ``GET /api/tracker/jobs/{id}`` answer says the job is done.

    The answer is a list of notifications, newest first; the job is done when the newest has
    ``completed: true``. Anything else (an empty list, an unexpected shape) means not yet.
    """
    if isinstance(body, list) and body:
        newest = body[0]
        return isinstance(newest, dict) and newest.get("completed") is True
    return False


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
