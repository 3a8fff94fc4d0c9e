"""Tracker endpoints: events (new and legacy), tracked entities, enrollments, imports, jobs.

Per-version differences implemented here (see WEB_API.md §4, §5):

- envelopes: 2.36-2.40 ``{"instances", "page", "pageSize"}``; 2.41 ``pager`` plus the flat
  fields and ``events``; 2.42+ ``pager`` with ``nextPage``/``prevPage`` links and ``events``;
- ``ouMode`` (<=2.41) vs ``orgUnitMode`` (2.41+; both on 2.41 is a 400; 2.42 ignores ``ouMode``);
- ``skipPaging`` (<=2.41) vs ``paging=false`` (2.41+); ``event=a;b`` vs ``events=a,b``;
- ``order`` with legacy names on 2.36, new names from 2.37; ``fields`` honoured from 2.38;
- event JSON: ``orgUnitName`` <=2.40, ``followup``/``followUp``, user objects from 2.38;
- ``POST /api/tracker`` is synchronous only with the literal ``async=false`` up to 2.41.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from dhis2_lmis.testing._fields import FieldSpec, apply_fields, parse_fields
from dhis2_lmis.testing._metadata import fmt_time
from dhis2_lmis.testing._server import Request, Response, json_response, web_message
from dhis2_lmis.testing._world import (
    DEFAULT_CATEGORY_OPTION,
    DEFAULT_COC,
    Enrollment,
    Event,
    Job,
    TrackedEntity,
    User,
    new_uid,
)

if TYPE_CHECKING:  # pragma: no cover - import for type checkers only
    from dhis2_lmis.testing._fake import FakeDhis2

__all__ = [
    "BadRequest",
    "handle_enrollments",
    "handle_event",
    "handle_events",
    "handle_import",
    "handle_job",
    "handle_job_report",
    "handle_legacy_event",
    "handle_legacy_events",
    "handle_legacy_import",
    "handle_tracked_entities",
    "handle_tracked_entity",
    "is_numeric_type",
    "numeric_problem",
    "parse_when",
    "scope_org_units",
]

Json = dict[str, Any]
_T = TypeVar("_T")

NUMERIC_TYPES = {
    "INTEGER",
    "INTEGER_POSITIVE",
    "INTEGER_NEGATIVE",
    "INTEGER_ZERO_OR_POSITIVE",
    "NUMBER",
    "PERCENTAGE",
    "UNIT_INTERVAL",
}
EVENT_STATUSES = {"ACTIVE", "COMPLETED", "VISITED", "SCHEDULE", "OVERDUE", "SKIPPED"}
STRATEGIES = ("CREATE", "UPDATE", "CREATE_AND_UPDATE", "DELETE")
_NEW_ORDER = {
    "occurredAt": "occurred_at",
    "scheduledAt": "scheduled_at",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "completedAt": "completed_at",
}
_LEGACY_ORDER = {
    "eventDate": "occurred_at",
    "dueDate": "scheduled_at",
    "created": "created_at",
    "lastUpdated": "updated_at",
    "completedDate": "completed_at",
}


class BadRequest(Exception):
    """Raised inside handlers; becomes a WebMessage with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _guard(
    fn: Callable[[FakeDhis2, Request, re.Match[str], User | None], Response],
) -> Callable[[FakeDhis2, Request, re.Match[str], User | None], Response]:
    def wrapped(fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None) -> Response:
        try:
            return fn(fake, req, m, user)
        except BadRequest as exc:
            return web_message(exc.status, str(exc))

    wrapped.__doc__ = fn.__doc__
    return wrapped


# --- value helpers ------------------------------------------------------------------------------


def is_numeric_type(value_type: str) -> bool:
    """True for DHIS2's numeric value types."""
    return value_type in NUMERIC_TYPES


def numeric_problem(value_type: str, value: str) -> str | None:
    """DHIS2's reason key when ``value`` does not fit the numeric ``value_type``."""
    if value_type not in NUMERIC_TYPES:
        return None
    try:
        number = float(value)
    except ValueError:
        return "value_not_numeric"
    if value_type.startswith("INTEGER"):
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            return "value_not_integer"
        if value_type == "INTEGER_POSITIVE" and number <= 0:
            return "value_not_positive_integer"
        if value_type == "INTEGER_NEGATIVE" and number >= 0:
            return "value_not_negative_integer"
        if value_type == "INTEGER_ZERO_OR_POSITIVE" and number < 0:
            return "value_not_zero_or_positive_integer"
    if value_type == "PERCENTAGE" and not 0 <= number <= 100:
        return "value_not_percentage"
    if value_type == "UNIT_INTERVAL" and not 0 <= number <= 1:
        return "value_not_unit_interval"
    return None


def parse_when(fake: FakeDhis2, text: str, *, end_of_day: bool = False) -> dt.datetime:
    """Parse a DHIS2 date or date-time into a naive server-local datetime.

    Raises:
        BadRequest: not a date.
    """
    raw = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = dt.datetime.fromisoformat(raw)
            return (
                day.replace(hour=23, minute=59, second=59, microsecond=999000)
                if end_of_day
                else day
            )
        iso = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
        iso = re.sub(r" (\d{2}:?\d{2})$", r"+\1", iso)  # a "+" decoded as a space in a query
        value = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise BadRequest(f"Invalid date format: {text}") from None
    if value.tzinfo is not None:
        value = value.astimezone(fake.tz).replace(tzinfo=None)
    return value


def _split(values: Sequence[str], sep: str) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(p.strip() for p in value.split(sep) if p.strip())
    return out


def scope_org_units(
    fake: FakeDhis2, user: User | None, org_units: Sequence[str], mode: str | None
) -> set[str] | None:
    """The org units a tracker query covers; None means every org unit (mode ALL).

    Raises:
        BadRequest: unknown org unit or a mode that cannot go with an org unit (2.41+).
    """
    world = fake.world
    minor = fake.server_version.minor
    chosen = (mode or ("SELECTED" if org_units else "ACCESSIBLE")).upper()
    if chosen not in ("SELECTED", "CHILDREN", "DESCENDANTS", "ACCESSIBLE", "CAPTURE", "ALL"):
        raise BadRequest(f"Value {mode} is not a valid orgUnitMode.")
    if minor >= 41 and org_units and chosen in ("ACCESSIBLE", "CAPTURE", "ALL"):
        raise BadRequest(
            f"orgUnitMode {chosen} cannot be used with orgUnits. Please remove the orgUnit "
            "parameter and try again."
        )
    with world.lock:
        for ou in org_units:
            if ou not in world.org_units:
                raise BadRequest(f"Organisation unit does not exist: {ou}")
        if chosen == "ALL":
            return None
        if chosen in ("ACCESSIBLE", "CAPTURE") or not org_units:
            roots = user.org_units if user is not None else ()
            return {d for r in roots for d in world.descendants(r)}
        out: set[str] = set()
        for ou in org_units:
            if chosen == "SELECTED":
                out.add(ou)
            elif chosen == "CHILDREN":
                out.update(world.org_units[ou].children)
                if minor >= 38:
                    out.add(ou)
            else:
                out.update(world.descendants(ou))
        return out


def _mode(fake: FakeDhis2, req: Request) -> str | None:
    minor = fake.server_version.minor
    ou_mode, org_unit_mode = req.param("ouMode"), req.param("orgUnitMode")
    if minor <= 40:
        return ou_mode
    if minor == 41:
        if ou_mode and org_unit_mode:
            raise BadRequest(
                "Only one parameter of 'ouMode' and 'orgUnitMode' must be specified. Prefer "
                "'orgUnitMode' as 'ouMode' will be removed."
            )
        return org_unit_mode or ou_mode
    return org_unit_mode


@dataclass
class _Paging:
    paged: bool
    page: int
    size: int
    totals: bool


def _paging(fake: FakeDhis2, req: Request, *, legacy: bool = False) -> _Paging:
    minor = fake.server_version.minor
    try:
        page = int(req.param("page") or 1)
        size = int(req.param("pageSize") or 50)
    except ValueError:
        raise BadRequest("page and pageSize must be integers") from None
    totals = req.flag("totalPages")
    paging_param, skip_param = req.param("paging"), req.param("skipPaging")
    if legacy or minor <= 40:
        skip = req.flag("skipPaging")
    else:
        both = paging_param is not None and skip_param is not None
        if minor == 41 and both and str(paging_param).lower() == str(skip_param).lower():
            raise BadRequest(
                "Paging can either be enabled or disabled. Prefer 'paging' as 'skipPaging' "
                "will be removed."
            )
        skip = paging_param is not None and paging_param.lower() == "false"
        if minor == 41 and skip_param is not None:
            skip = skip or skip_param.lower() == "true"
        explicit = req.param("page") is not None or req.param("pageSize") is not None
        if skip and (explicit or totals):
            raise BadRequest(
                "Paging cannot be disabled with paging=false while also requesting a paginated "
                "response with page, pageSize and/or totalPages=true"
            )
        if page < 1:
            raise BadRequest("page must be greater than or equal to 1 if specified")
        if size < 1:
            raise BadRequest("pageSize must be greater than or equal to 1 if specified")
    return _Paging(not skip, max(page, 1), max(size, 1), totals)


def _page_of(items: Sequence[_T], paging: _Paging) -> Sequence[_T]:
    """The items of the requested page (all of them when paging is off)."""
    if not paging.paged:
        return items
    start = (paging.page - 1) * paging.size
    return items[start : start + paging.size]


def _envelope(
    fake: FakeDhis2, req: Request, key_new: str, items: list[Any], paging: _Paging, *, total: int
) -> Json:
    """Wrap one page of ``items`` (already cut by :func:`_page_of`, out of ``total``) in the
    version's envelope; only the page is rendered, so a deep page costs no more than the first."""
    minor = fake.server_version.minor
    key = "instances" if minor <= 40 else key_new
    if not paging.paged:
        return {key: items}
    start = (paging.page - 1) * paging.size
    page_items = items
    more = total > start + paging.size
    page_count = max(1, -(-total // paging.size))
    flat: Json = {"page": paging.page, "pageSize": paging.size}
    if paging.totals:
        flat["total"] = total
        if minor >= 38:
            flat["pageCount"] = page_count
    if minor <= 40:
        return {key: page_items, **flat}
    pager = dict(flat)
    if minor == 41:
        return {"pager": pager, **flat, key: page_items}
    if paging.page > 1:
        pager["prevPage"] = req.url_with(page=str(paging.page - 1))
    if more:
        pager["nextPage"] = req.url_with(page=str(paging.page + 1))
    return {"pager": pager, key: page_items}


# --- events: reading ----------------------------------------------------------------------------


@dataclass
class _Schemes:
    data_element: str = "UID"
    org_unit: str = "UID"
    program: str = "UID"
    program_stage: str = "UID"

    @classmethod
    def from_request(cls, req: Request) -> _Schemes:
        general = (req.param("idScheme") or "UID").upper()
        return cls(
            (req.param("dataElementIdScheme") or general).upper(),
            (req.param("orgUnitIdScheme") or general).upper(),
            (req.param("programIdScheme") or general).upper(),
            (req.param("programStageIdScheme") or general).upper(),
        )


def _user_ref(fake: FakeDhis2, username: str) -> Json | str:
    user = fake.world.users.get(username)
    if fake.server_version.minor <= 37:
        return username
    out: Json = {"uid": user.uid if user else "", "username": username}
    if user is not None:
        out.update(
            firstName=user.first_name,
            surname=user.surname,
            displayName=f"{user.first_name} {user.surname}",
        )
    return out


def event_json(fake: FakeDhis2, req: Request, e: Event, schemes: _Schemes) -> Json:
    """An event in the new tracker shape of the fake's version."""
    world = fake.world
    minor = fake.server_version.minor
    out: Json = {
        "event": e.uid,
        "status": e.status,
        "program": world.identify("programs", e.program, schemes.program),
        "programStage": world.identify("program_stages", e.program_stage, schemes.program_stage),
    }
    if e.enrollment is not None:
        out["enrollment"] = e.enrollment
    if e.tracked_entity is not None and minor != 37:
        out["trackedEntity"] = e.tracked_entity
    out["orgUnit"] = world.identify("org_units", e.org_unit, schemes.org_unit)
    if minor <= 40:
        ou = world.org_units.get(e.org_unit)
        out["orgUnitName"] = ou.name if ou else ""
    out["occurredAt"] = fmt_time(e.occurred_at)
    out["scheduledAt"] = fmt_time(e.scheduled_at)
    if e.completed_at is not None:
        out["completedAt"] = fmt_time(e.completed_at)
        out["completedBy"] = e.completed_by or e.stored_by
    out["storedBy"] = e.stored_by
    if minor <= 41:
        out["followup"] = e.follow_up
    if minor >= 41:
        out["followUp"] = e.follow_up
    out["deleted"] = e.deleted
    out["createdAt"] = fmt_time(e.created_at)
    out["createdAtClient"] = fmt_time(e.created_at)
    out["updatedAt"] = fmt_time(e.updated_at)
    out["updatedAtClient"] = fmt_time(e.updated_at)
    out["attributeOptionCombo"] = e.attribute_option_combo
    out["attributeCategoryOptions"] = DEFAULT_CATEGORY_OPTION
    user = _user_ref(fake, e.stored_by)  # one object, rendered wherever the user is named
    if minor >= 37:
        out["createdBy"] = user
        out["updatedBy"] = user
    values: list[Json] = []
    for de, value in e.data_values.items():
        created, updated = e.value_times.get(de, (e.created_at, e.updated_at))
        dv: Json = {
            "dataElement": world.identify("data_elements", de, schemes.data_element),
            "value": value,
            "providedElsewhere": False,
            "storedBy": e.stored_by,
            "createdAt": fmt_time(created),
            "updatedAt": fmt_time(updated),
        }
        if minor >= 38:
            dv["createdBy"] = user
            dv["updatedBy"] = user
        values.append(dv)
    out["dataValues"] = values
    out["notes"] = []
    out["relationships"] = []
    if minor == 36:
        out["href"] = f"{req.base_url}/api/tracker/events/{e.uid}"
    return out


def _event_filters(fake: FakeDhis2, req: Request) -> list[Callable[[Event], bool]]:
    """Data element filters ``filter=<de>:<op>:<value>[:<op>:<value>]``."""
    checks: list[Callable[[Event], bool]] = []
    for expr in req.params("filter"):
        parts = expr.split(":")
        de = parts[0]
        ops = parts[1:]
        i = 0
        while i < len(ops):
            op = ops[i].lower()
            if op in ("null", "!null"):
                checks.append(_value_check(de, op, ""))
                i += 1
            else:
                operand = ops[i + 1] if i + 1 < len(ops) else ""
                checks.append(_value_check(de, op, operand.replace("/:", ":")))
                i += 2
    return checks


def _value_check(de: str, op: str, operand: str) -> Callable[[Event], bool]:
    def num(a: str) -> float | None:
        try:
            return float(a)
        except ValueError:
            return None

    def check(e: Event) -> bool:
        value = e.data_values.get(de)
        if op == "null":
            return value is None
        if op == "!null":
            return value is not None
        if value is None:
            return op in ("ne", "neq", "!eq", "nlike", "!like", "!in")
        if op == "eq":
            return value.lower() == operand.lower()
        if op in ("ne", "neq", "!eq"):
            return value.lower() != operand.lower()
        if op in ("like", "ilike"):
            return operand.lower() in value.lower()
        if op in ("nlike", "!like"):
            return operand.lower() not in value.lower()
        if op == "sw":
            return value.lower().startswith(operand.lower())
        if op == "ew":
            return value.lower().endswith(operand.lower())
        if op == "in":
            return value.lower() in {o.lower() for o in operand.split(";")}
        if op == "!in":
            return value.lower() not in {o.lower() for o in operand.split(";")}
        a, b = num(value), num(operand)
        left: float | str = a if a is not None and b is not None else value
        right: float | str = b if a is not None and b is not None else operand
        if op == "gt":
            return left > right  # type: ignore[operator]  # both float or both str
        if op == "ge":
            return left >= right  # type: ignore[operator]  # both float or both str
        if op == "lt":
            return left < right  # type: ignore[operator]  # both float or both str
        if op == "le":
            return left <= right  # type: ignore[operator]  # both float or both str
        raise BadRequest(f"Operator {op} is not supported")

    return check


def _sort_events(fake: FakeDhis2, req: Request, events: list[Event], *, legacy: bool) -> None:
    minor = fake.server_version.minor
    if legacy or minor == 36:
        names = dict(_LEGACY_ORDER)
    elif minor <= 40:
        names = {**_NEW_ORDER, **_LEGACY_ORDER}
    else:
        names = dict(_NEW_ORDER)
    events.sort(key=lambda e: e.seq, reverse=True)
    orders = [o.strip() for o in ",".join(req.params("order")).split(",") if o.strip()]
    for order in reversed(orders):
        name, _, direction = order.partition(":")
        attr = names.get(name)
        if attr is None:
            continue
        floor = dt.datetime.min

        def key(e: Event, a: str = attr, f: dt.datetime = floor) -> tuple[bool, dt.datetime]:
            value = getattr(e, a)
            return (value is None, value or f)

        events.sort(key=key, reverse=direction.lower() == "desc")


def _select_events(
    fake: FakeDhis2, req: Request, user: User | None, *, legacy: bool
) -> list[Event]:
    world = fake.world
    minor = fake.server_version.minor
    end_of_day = minor >= 39 and not legacy
    program = req.param("program")
    stage = req.param("programStage")
    if program and program not in world.programs:
        raise BadRequest(f"Program is specified but does not exist: {program}")
    if stage and stage not in world.program_stages:
        raise BadRequest(f"Program stage is specified but does not exist: {stage}")
    org_unit = req.param("orgUnit")
    mode = req.param("ouMode") if legacy else _mode(fake, req)
    if minor <= 40 and (mode or "").upper() in ("ACCESSIBLE", "CAPTURE", "ALL"):
        org_units: list[str] = []
    else:
        org_units = [org_unit] if org_unit else []
    scope = scope_org_units(fake, user, org_units, mode)
    status = req.param("status")
    if legacy:
        after = req.param("lastUpdatedStartDate")
        before = req.param("lastUpdatedEndDate")
        occ_after, occ_before = req.param("startDate"), req.param("endDate")
        te = req.param("trackedEntityInstance")
        ids = _split(req.params("event"), ";")
    else:
        after, before = req.param("updatedAfter"), req.param("updatedBefore")
        occ_after, occ_before = req.param("occurredAfter"), req.param("occurredBefore")
        te = req.param("trackedEntity")
        if minor <= 40:
            ids = _split(req.params("event"), ";")
        elif minor == 41:
            ids = _split(req.params("events"), ",") + _split(req.params("event"), ";")
        else:
            ids = _split(req.params("events"), ",")
    enrollments = _split(req.params("enrollment"), ";")
    if minor >= 41 and not legacy:
        enrollments += _split(req.params("enrollments"), ",")
    bounds = (
        parse_when(fake, after) if after else None,
        parse_when(fake, before, end_of_day=end_of_day) if before else None,
        parse_when(fake, occ_after) if occ_after else None,
        parse_when(fake, occ_before, end_of_day=end_of_day) if occ_before else None,
    )
    include_deleted = req.flag("includeDeleted")
    checks = _event_filters(fake, req)
    out: list[Event] = []
    low, high = bounds[0], bounds[1]
    with world.lock:
        # the updatedAt window first, in one cheap pass: keyset reads ask for a narrow one
        candidates = [
            e
            for e in world.events.values()
            if (low is None or e.updated_at >= low) and (high is None or e.updated_at <= high)
        ]
        for e in candidates:
            if e.deleted and not include_deleted:
                continue
            if program and e.program != program:
                continue
            if stage and e.program_stage != stage:
                continue
            if scope is not None and e.org_unit not in scope:
                continue
            if status and e.status != status.upper():
                continue
            if te and e.tracked_entity != te:
                continue
            if ids and e.uid not in ids:
                continue
            if enrollments and e.enrollment not in enrollments:
                continue
            if bounds[2] and (e.occurred_at is None or e.occurred_at < bounds[2]):
                continue
            if bounds[3] and (e.occurred_at is None or e.occurred_at > bounds[3]):
                continue
            if not all(check(e) for check in checks):
                continue
            out.append(e)
    _sort_events(fake, req, out, legacy=legacy)
    return out


# An event list is rendered with this stand-in, then the cached events' JSON replaces it.
_RAW = "\u0000events"
_RAW_JSON = json.dumps(_RAW).encode()


def _compact(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _fields_spec(fake: FakeDhis2, req: Request, default: str) -> FieldSpec | None:
    if fake.server_version.minor <= 37:
        return None
    return parse_fields(",".join(req.params("fields")) or default)


@_guard
def handle_events(fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/tracker/events``."""
    events = _select_events(fake, req, user, legacy=False)
    paging = _paging(fake, req)
    schemes = _Schemes.from_request(req)
    spec = _fields_spec(fake, req, "*,!relationships")
    shape = (req.base_url, req.api_version, str(schemes), ",".join(req.params("fields")))

    def render(e: Event) -> bytes:
        body = event_json(fake, req, e, schemes)
        return _compact(apply_fields(spec, body) if spec is not None else body)

    with fake.world.lock:
        page = [
            fake.rendered((e.uid, e.updated_at, shape), lambda e=e: render(e))  # type: ignore[misc]
            for e in _page_of(events, paging)
        ]
    envelope = _envelope(fake, req, "events", [_RAW], paging, total=len(events))
    response = Response(200, _compact(envelope).replace(_RAW_JSON, b",".join(page), 1))
    response.items = len(page)
    return response


@_guard
def handle_event(fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/tracker/events/<uid>``: the bare event."""
    with fake.world.lock:
        event = fake.world.events.get(m.group("uid"))
        if event is None:
            return web_message(404, f"Event with id {m.group('uid')} could not be found.")
        body = event_json(fake, req, event, _Schemes.from_request(req))
    spec = _fields_spec(fake, req, "*,!relationships")
    return json_response(200, apply_fields(spec, body) if spec else body)


# --- legacy /api/events ---------------------------------------------------------------------


_LEGACY_DEFAULT_HIDDEN_36 = {
    "programStage",
    "attributeOptionCombo",
    "dueDate",
    "completedDate",
    "storedBy",
    "deleted",
}
_LEGACY_DEFAULT_HIDDEN_40 = {"dueDate", "completedDate", "storedBy"}


def legacy_event_json(fake: FakeDhis2, req: Request, e: Event, schemes: _Schemes) -> Json:
    """An event in the legacy ``/api/events`` shape."""
    world = fake.world
    program = world.programs.get(e.program)
    ou = world.org_units.get(e.org_unit)
    out: Json = {
        "event": e.uid,
        "status": e.status,
        "program": world.identify("programs", e.program, schemes.program),
        "programStage": world.identify("program_stages", e.program_stage, schemes.program_stage),
        "programType": program.program_type if program else "WITHOUT_REGISTRATION",
        "orgUnit": world.identify("org_units", e.org_unit, schemes.org_unit),
        "orgUnitName": ou.name if ou else "",
    }
    if e.enrollment is not None:
        out["enrollment"] = e.enrollment
        enrollment = world.enrollments.get(e.enrollment)
        if enrollment is not None:
            out["enrollmentStatus"] = enrollment.status
    if e.tracked_entity is not None:
        out["trackedEntityInstance"] = e.tracked_entity
    out.update(
        eventDate=fmt_time(e.occurred_at),
        dueDate=fmt_time(e.scheduled_at),
        storedBy=e.stored_by,
        created=fmt_time(e.created_at),
        lastUpdated=fmt_time(e.updated_at),
        createdAtClient=fmt_time(e.created_at),
        lastUpdatedAtClient=fmt_time(e.updated_at),
        followup=e.follow_up,
        deleted=e.deleted,
        attributeOptionCombo=e.attribute_option_combo,
        attributeCategoryOptions=DEFAULT_CATEGORY_OPTION,
    )
    if e.completed_at is not None:
        out["completedDate"] = fmt_time(e.completed_at)
        out["completedBy"] = e.completed_by or e.stored_by
    out["dataValues"] = [
        {
            "dataElement": world.identify("data_elements", de, schemes.data_element),
            "value": value,
            "providedElsewhere": False,
            "storedBy": e.stored_by,
            "created": fmt_time(e.value_times.get(de, (e.created_at, e.updated_at))[0]),
            "lastUpdated": fmt_time(e.value_times.get(de, (e.created_at, e.updated_at))[1]),
        }
        for de, value in e.data_values.items()
    ]
    out["notes"] = []
    out["href"] = f"{req.base_url}/api/events/{e.uid}"
    return out


def _legacy_fields(fake: FakeDhis2, req: Request, items: list[Json]) -> list[Json]:
    fields = ",".join(req.params("fields"))
    if fields:
        spec = parse_fields(fields)
        return [apply_fields(spec, i) for i in items]
    minor = fake.server_version.minor
    hidden = (
        _LEGACY_DEFAULT_HIDDEN_36
        if minor <= 39
        else _LEGACY_DEFAULT_HIDDEN_40
        if minor == 40
        else set()
    )
    return [{k: v for k, v in i.items() if k not in hidden} for i in items]


@_guard
def handle_legacy_events(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """Legacy ``GET /api/events`` (2.36-2.41)."""
    events = _select_events(fake, req, user, legacy=True)
    paging = _paging(fake, req, legacy=True)
    schemes = _Schemes.from_request(req)
    with fake.world.lock:
        page_items = _legacy_fields(
            fake, req, [legacy_event_json(fake, req, e, schemes) for e in _page_of(events, paging)]
        )
    if not paging.paged:
        return _page_response({"events": page_items}, len(page_items))
    start = (paging.page - 1) * paging.size
    last = len(events) <= start + paging.size
    pager: Json
    if paging.totals:
        page_count = max(1, -(-len(events) // paging.size))
        pager = {
            "page": paging.page,
            "pageCount": page_count,
            "total": len(events),
            "pageSize": paging.size,
        }
        if not last:
            pager["nextPage"] = req.url_with(page=str(paging.page + 1))
        if paging.page > 1:
            pager["prevPage"] = req.url_with(page=str(paging.page - 1))
    else:
        pager = {"page": paging.page, "pageSize": paging.size, "isLastPage": last}
    return _page_response({"pager": pager, "events": page_items}, len(page_items))


def _page_response(payload: Json, items: int) -> Response:
    response = json_response(200, payload)
    response.items = items
    return response


@_guard
def handle_legacy_event(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """Legacy ``GET /api/events/<uid>``."""
    with fake.world.lock:
        event = fake.world.events.get(m.group("uid"))
        if event is None:
            return web_message(404, f"Event not found for ID {m.group('uid')}")
        body = legacy_event_json(fake, req, event, _Schemes.from_request(req))
    return json_response(200, _legacy_fields(fake, req, [body])[0])


# --- tracked entities and enrollments --------------------------------------------------------


def enrollment_json(fake: FakeDhis2, en: Enrollment) -> Json:
    """An enrollment in the new tracker shape."""
    minor = fake.server_version.minor
    out: Json = {
        "enrollment": en.uid,
        "createdAt": fmt_time(en.created_at),
        "createdAtClient": fmt_time(en.created_at),
        "updatedAt": fmt_time(en.updated_at),
        "updatedAtClient": fmt_time(en.updated_at),
        "trackedEntity": en.tracked_entity,
        "program": en.program,
        "status": en.status,
        "orgUnit": en.org_unit,
    }
    if minor <= 40:
        ou = fake.world.org_units.get(en.org_unit)
        out["orgUnitName"] = ou.name if ou else ""
    out.update(
        enrolledAt=fmt_time(en.enrolled_at),
        occurredAt=fmt_time(en.occurred_at),
        followUp=False,
        deleted=en.deleted,
        storedBy="admin",
        events=[],
        relationships=[],
        attributes=[],
        notes=[],
    )
    return out


def tracked_entity_json(fake: FakeDhis2, te: TrackedEntity) -> Json:
    """A tracked entity in the new tracker shape (attributes and enrollments inline)."""
    world = fake.world
    attributes: list[Json] = []
    for tea_uid, value in te.attributes.items():
        tea = world.attributes.get(tea_uid)
        item: Json = {"attribute": tea_uid}
        if tea is not None and tea.code:
            item["code"] = tea.code
        item.update(
            displayName=tea.name if tea else tea_uid,
            createdAt=fmt_time(te.created_at),
            updatedAt=fmt_time(te.updated_at),
            storedBy="admin",
            valueType=tea.value_type if tea else "TEXT",
            value=value,
        )
        attributes.append(item)
    return {
        "trackedEntity": te.uid,
        "trackedEntityType": te.tracked_entity_type,
        "createdAt": fmt_time(te.created_at),
        "createdAtClient": fmt_time(te.created_at),
        "updatedAt": fmt_time(te.updated_at),
        "updatedAtClient": fmt_time(te.updated_at),
        "orgUnit": te.org_unit,
        "inactive": False,
        "deleted": te.deleted,
        "potentialDuplicate": False,
        "attributes": attributes,
        "enrollments": [
            enrollment_json(fake, world.enrollments[e])
            for e in te.enrollments
            if e in world.enrollments
        ],
        "relationships": [],
        "programOwners": [
            {
                "orgUnit": world.enrollments[e].org_unit,
                "trackedEntity": te.uid,
                "program": world.enrollments[e].program,
            }
            for e in te.enrollments
            if e in world.enrollments
        ],
    }


def _org_unit_params(fake: FakeDhis2, req: Request) -> list[str]:
    minor = fake.server_version.minor
    out: list[str] = []
    if minor <= 41:
        out += _split(req.params("orgUnit"), ";")
    if minor >= 41:
        out += _split(req.params("orgUnits"), ",")
    return out


def _attribute_checks(req: Request) -> list[Callable[[TrackedEntity], bool]]:
    checks: list[Callable[[TrackedEntity], bool]] = []
    for expr in req.params("filter") + req.params("attribute"):
        tea, _, rest = expr.partition(":")
        op, _, operand = rest.partition(":")
        op = op.lower()

        def check(te: TrackedEntity, t: str = tea, o: str = op, v: str = operand) -> bool:
            value = te.attributes.get(t)
            if o == "!null":
                return value is not None
            if o == "null":
                return value is None
            if value is None:
                return False
            if o == "eq":
                return value.lower() == v.lower()
            if o == "in":
                return value.lower() in {x.lower() for x in v.split(";")}
            if o in ("like", "ilike"):
                return v.lower() in value.lower()
            if o == "sw":
                return value.lower().startswith(v.lower())
            if o == "ew":
                return value.lower().endswith(v.lower())
            if o in ("ne", "!eq"):
                return value.lower() != v.lower()
            return not o  # "filter=<tea>" alone means "has the attribute"

        checks.append(check)
    return checks


@_guard
def handle_tracked_entities(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """``GET /api/tracker/trackedEntities``."""
    world = fake.world
    minor = fake.server_version.minor
    program = req.param("program")
    if minor >= 41 and not program and not req.param("trackedEntityType"):
        raise BadRequest("Either `program`, `trackedEntityType` should be specified")
    if program and program not in world.programs:
        raise BadRequest(f"Program is specified but does not exist: {program}")
    scope = scope_org_units(fake, user, _org_unit_params(fake, req), _mode(fake, req))
    wanted = _split(req.params("trackedEntity"), ";") if minor <= 41 else []
    if minor >= 41:
        wanted += _split(req.params("trackedEntities"), ",")
    checks = _attribute_checks(req)
    paging = _paging(fake, req)
    default = (
        "*,!relationships"
        if minor <= 37
        else "*,!relationships,!enrollments,!events,!programOwners"
    )
    spec = parse_fields(",".join(req.params("fields")) or default)
    items: list[Json] = []
    with world.lock:
        for te in world.tracked_entities.values():
            if te.deleted and not req.flag("includeDeleted"):
                continue
            if program and not any(
                world.enrollments[e].program == program
                for e in te.enrollments
                if e in world.enrollments
            ):
                continue
            if scope is not None and te.org_unit not in scope:
                continue
            if wanted and te.uid not in wanted:
                continue
            if not all(c(te) for c in checks):
                continue
            items.append(apply_fields(spec, tracked_entity_json(fake, te)))
    page = list(_page_of(items, paging))
    body = _envelope(fake, req, "trackedEntities", page, paging, total=len(items))
    return json_response(200, body)


@_guard
def handle_tracked_entity(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """``GET /api/tracker/trackedEntities/<uid>``."""
    with fake.world.lock:
        te = fake.world.tracked_entities.get(m.group("uid"))
        if te is None:
            return web_message(404, f"TrackedEntity with id {m.group('uid')} could not be found.")
        body = tracked_entity_json(fake, te)
    spec = parse_fields(",".join(req.params("fields")) or "*,!relationships")
    return json_response(200, apply_fields(spec, body))


@_guard
def handle_enrollments(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """``GET /api/tracker/enrollments``."""
    world = fake.world
    program = req.param("program")
    scope = scope_org_units(fake, user, _org_unit_params(fake, req), _mode(fake, req))
    te = req.param("trackedEntity")
    paging = _paging(fake, req)
    spec = parse_fields(",".join(req.params("fields")) or "*,!relationships,!events,!attributes")
    items: list[Json] = []
    with world.lock:
        for en in world.enrollments.values():
            if program and en.program != program:
                continue
            if scope is not None and en.org_unit not in scope:
                continue
            if te and en.tracked_entity != te:
                continue
            items.append(apply_fields(spec, enrollment_json(fake, en)))
    page = list(_page_of(items, paging))
    return json_response(200, _envelope(fake, req, "enrollments", page, paging, total=len(items)))


# --- imports -------------------------------------------------------------------------------------


@dataclass
class _Report:
    errors: list[Json] = field(default_factory=list)
    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    indexes: dict[tuple[str, str], int] = field(default_factory=dict)


_TYPES = ("TRACKED_ENTITY", "ENROLLMENT", "EVENT", "RELATIONSHIP")


def _stats(created: int, updated: int, deleted: int, ignored: int) -> Json:
    return {
        "created": created,
        "updated": updated,
        "deleted": deleted,
        "ignored": ignored,
        "total": created + updated + deleted + ignored,
    }


def report_json(fake: FakeDhis2, report: _Report, *, bundle: bool) -> Json:
    """An ImportReport in the version's shape."""
    minor = fake.server_version.minor
    status = "ERROR" if report.errors else "OK"
    type_map: Json = {}
    totals = [0, 0, 0, 0]
    for kind in _TYPES:
        counts = [
            len(report.created.get(kind, [])),
            len(report.updated.get(kind, [])),
            len(report.deleted.get(kind, [])),
            report.ignored.get(kind, 0),
        ]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        objects: list[Json] = []
        for uid in (
            report.created.get(kind, [])
            + report.updated.get(kind, [])
            + report.deleted.get(kind, [])
        ):
            item: Json = {"trackerType": kind, "uid": uid}
            if minor <= 40:
                item["index"] = report.indexes.get((kind, uid), 0)
            item["errorReports"] = []
            objects.append(item)
        type_map[kind] = {"trackerType": kind, "stats": _stats(*counts), "objectReports": objects}
    out: Json = {
        "status": status,
        "validationReport": {"errorReports": report.errors, "warningReports": []},
        "stats": _stats(*totals),
    }
    if bundle:
        bundle_report: Json = {}
        if minor <= 39:
            bundle_report["status"] = status
        bundle_report["typeReportMap"] = type_map
        bundle_report["stats"] = _stats(totals[0], totals[1], totals[2], 0)
        out["bundleReport"] = bundle_report
    return out


def _error(code: str, message: str, kind: str, uid: str) -> Json:
    return {"message": message, "errorCode": code, "trackerType": kind, "uid": uid}


@dataclass
class _Item:
    kind: str
    uid: str
    data: Json
    index: int
    action: str = ""
    errors: list[Json] = field(default_factory=list)


def _collect(body: Json) -> list[_Item]:
    """Flatten nested trackedEntities > enrollments > events into ordered items."""
    items: list[_Item] = []
    counters = {k: 0 for k in _TYPES}

    def add(kind: str, data: Json) -> str:
        uid = str(
            data.get(
                {"TRACKED_ENTITY": "trackedEntity", "ENROLLMENT": "enrollment", "EVENT": "event"}[
                    kind
                ]
            )
            or new_uid()
        )
        items.append(_Item(kind, uid, data, counters[kind]))
        counters[kind] += 1
        return uid

    for te in body.get("trackedEntities") or []:
        te_uid = add("TRACKED_ENTITY", te)
        for en in te.get("enrollments") or []:
            en.setdefault("trackedEntity", te_uid)
            en_uid = add("ENROLLMENT", en)
            for ev in en.get("events") or []:
                ev.setdefault("enrollment", en_uid)
                ev.setdefault("program", en.get("program"))
                add("EVENT", ev)
    for en in body.get("enrollments") or []:
        en_uid = add("ENROLLMENT", en)
        for ev in en.get("events") or []:
            ev.setdefault("enrollment", en_uid)
            ev.setdefault("program", en.get("program"))
            add("EVENT", ev)
    for ev in body.get("events") or []:
        add("EVENT", ev)
    return items


def _action(
    existing: object | None, deleted: bool, strategy: str, kind: str, uid: str
) -> tuple[str, Json | None]:
    label = {"TRACKED_ENTITY": "TrackedEntity", "ENROLLMENT": "Enrollment", "EVENT": "Event"}[kind]
    exists_code = {"TRACKED_ENTITY": "E1002", "ENROLLMENT": "E1080", "EVENT": "E1030"}[kind]
    missing_code = {"TRACKED_ENTITY": "E1063", "ENROLLMENT": "E1081", "EVENT": "E1032"}[kind]
    if existing is not None and deleted:
        return "", _error(
            "E1082", f"{label}: `{uid}`, is already deleted and cannot be modified.", kind, uid
        )
    if strategy == "DELETE":
        if existing is None:
            return "", _error(missing_code, f"{label}: `{uid}`, {label} does not exist.", kind, uid)
        return "delete", None
    if strategy == "CREATE" and existing is not None:
        return "", _error(exists_code, f"{label}: `{uid}`, {label} already exists.", kind, uid)
    if strategy == "UPDATE" and existing is None:
        return "", _error(missing_code, f"{label}: `{uid}`, {label} does not exist.", kind, uid)
    return ("update" if existing is not None else "create"), None


def _validate_event(fake: FakeDhis2, item: _Item, schemes: _Schemes, pending: set[str]) -> None:
    world = fake.world
    ev, uid = item.data, item.uid
    errors = item.errors
    ou_ref, program_ref, stage_ref = ev.get("orgUnit"), ev.get("program"), ev.get("programStage")
    ou = world.resolve("org_units", str(ou_ref), schemes.org_unit) if ou_ref else None
    if ou is None:
        errors.append(
            _error(
                "E1011",
                f"Could not find OrganisationUnit: `{ou_ref}`, linked to Event.",
                "EVENT",
                uid,
            )
        )
    stage = (
        world.resolve("program_stages", str(stage_ref), schemes.program_stage)
        if stage_ref
        else None
    )
    program = world.resolve("programs", str(program_ref), schemes.program) if program_ref else None
    if program_ref and program is None:
        errors.append(
            _error(
                "E1010", f"Could not find Program: `{program_ref}`, linked to Event.", "EVENT", uid
            )
        )
    if not stage_ref:
        errors.append(
            _error("E1123", "Missing required event property: `programStage`.", "EVENT", uid)
        )
    elif stage is None:
        errors.append(
            _error(
                "E1013",
                f"Could not find ProgramStage: `{stage_ref}`, linked to Event.",
                "EVENT",
                uid,
            )
        )
    if program is None and stage is not None and not program_ref:
        program = world.program_stages[stage].program
    if program is not None and stage is not None and world.program_stages[stage].program != program:
        errors.append(
            _error(
                "E1089",
                f"Event: `{uid}`, references a Program Stage `{stage}` that does not belong to "
                f"Program `{program}`.",
                "EVENT",
                uid,
            )
        )
    status = str(ev.get("status") or "ACTIVE").upper()
    if status not in EVENT_STATUSES:
        errors.append(
            _error("E1305", f"Event: `{uid}`, has an invalid status `{status}`.", "EVENT", uid)
        )
    if status in ("ACTIVE", "COMPLETED") and not ev.get("occurredAt"):
        errors.append(_error("E1031", "Event OccurredAt date is missing.", "EVENT", uid))
    for key in ("occurredAt", "scheduledAt", "completedAt"):
        if ev.get(key):
            try:
                parse_when(fake, str(ev[key]))
            except BadRequest:
                errors.append(_error("E1051", f"Invalid event {key}: `{ev[key]}`.", "EVENT", uid))
    aoc = ev.get("attributeOptionCombo")
    if aoc and world.resolve("category_option_combos", str(aoc), "UID") is None:
        errors.append(
            _error("E1115", f"Could not find CategoryOptionCombo: `{aoc}`.", "EVENT", uid)
        )
    prog = world.programs.get(program) if program else None
    if prog is not None and prog.program_type == "WITH_REGISTRATION":
        enrollment = ev.get("enrollment")
        if not enrollment:
            errors.append(
                _error("E1033", f"Event: `{uid}`, Enrollment value is NULL.", "EVENT", uid)
            )
        elif enrollment not in world.enrollments and enrollment not in pending:
            errors.append(
                _error(
                    "E1033",
                    f"Could not find Enrollment: `{enrollment}`, linked to Event.",
                    "EVENT",
                    uid,
                )
            )
    stage_des = set(world.program_stages[stage].data_elements) if stage else set()
    for dv in ev.get("dataValues") or []:
        de_ref = dv.get("dataElement")
        de = world.resolve("data_elements", str(de_ref), schemes.data_element) if de_ref else None
        if de is None:
            errors.append(
                _error(
                    "E1304", f"Data element: `{de_ref}`, is not a valid data element.", "EVENT", uid
                )
            )
            continue
        if stage and de not in stage_des:
            errors.append(
                _error(
                    "E1305",
                    f"Data element: `{de}`, is not part of program stage: `{stage}`.",
                    "EVENT",
                    uid,
                )
            )
        value = dv.get("value")
        if value is not None and str(value) != "":
            problem = numeric_problem(world.data_elements[de].value_type, str(value))
            if problem is not None:
                errors.append(
                    _error(
                        "E1302",
                        f"Data element `{de}` value is not valid: `{problem}`",
                        "EVENT",
                        uid,
                    )
                )
    ev["_resolved"] = {"orgUnit": ou, "program": program, "programStage": stage}


def _validate_enrollment(fake: FakeDhis2, item: _Item, pending: set[str]) -> None:
    world = fake.world
    en, uid = item.data, item.uid
    if en.get("program") not in world.programs:
        item.errors.append(
            _error(
                "E1069",
                f"Could not find Program: `{en.get('program')}`, linked to Enrollment.",
                "ENROLLMENT",
                uid,
            )
        )
    if en.get("orgUnit") not in world.org_units:
        item.errors.append(
            _error(
                "E1070",
                f"Could not find OrganisationUnit: `{en.get('orgUnit')}`, linked to Enrollment.",
                "ENROLLMENT",
                uid,
            )
        )
    te = en.get("trackedEntity")
    if te not in world.tracked_entities and te not in pending:
        item.errors.append(
            _error(
                "E1068",
                f"Could not find TrackedEntity: `{te}`, linked to Enrollment.",
                "ENROLLMENT",
                uid,
            )
        )


def _validate_tracked_entity(fake: FakeDhis2, item: _Item) -> None:
    world = fake.world
    te, uid = item.data, item.uid
    if te.get("orgUnit") not in world.org_units:
        item.errors.append(
            _error(
                "E1049",
                f"Could not find OrganisationUnit: `{te.get('orgUnit')}`, linked to "
                "Tracked Entity.",
                "TRACKED_ENTITY",
                uid,
            )
        )
    for attr in te.get("attributes") or []:
        if attr.get("attribute") not in world.attributes:
            item.errors.append(
                _error(
                    "E1006",
                    f"Attribute: `{attr.get('attribute')}`, does not exist.",
                    "TRACKED_ENTITY",
                    uid,
                )
            )


def _apply_event(fake: FakeDhis2, item: _Item, user: User | None, stamp: dt.datetime) -> None:
    world = fake.world
    ev = item.data
    username = user.username if user else "admin"
    if item.action == "delete":
        event = world.events[item.uid]
        event.deleted = True
        event.updated_at = stamp
        return
    resolved = ev["_resolved"]
    status = str(ev.get("status") or "ACTIVE").upper()
    occurred = parse_when(fake, str(ev["occurredAt"])) if ev.get("occurredAt") else None
    scheduled = parse_when(fake, str(ev["scheduledAt"])) if ev.get("scheduledAt") else occurred
    completed = parse_when(fake, str(ev["completedAt"])) if ev.get("completedAt") else None
    enrollment = ev.get("enrollment")
    te = (
        world.enrollments[enrollment].tracked_entity
        if enrollment in world.enrollments
        else ev.get("trackedEntity")
    )
    if item.action == "create":
        event = Event(
            uid=item.uid,
            program=resolved["program"],
            program_stage=resolved["programStage"],
            org_unit=resolved["orgUnit"],
            status=status,
            occurred_at=occurred,
            scheduled_at=scheduled,
            completed_at=(completed or stamp) if status == "COMPLETED" else None,
            created_at=stamp,
            updated_at=stamp,
            data_values={},
            seq=world.next_seq(),
            tracked_entity=te,
            enrollment=enrollment,
            stored_by=str(ev.get("storedBy") or username),
            completed_by=username if status == "COMPLETED" else None,
            attribute_option_combo=str(ev.get("attributeOptionCombo") or DEFAULT_COC),
            follow_up=bool(ev.get("followUp", ev.get("followup", False))),
        )
        world.events[item.uid] = event
    else:
        event = world.events[item.uid]
        if status == "COMPLETED" and event.status != "COMPLETED":
            event.completed_at = completed or stamp
            event.completed_by = username
        elif status != "COMPLETED":
            event.completed_at = None
            event.completed_by = None
        event.program = resolved["program"] or event.program
        event.program_stage = resolved["programStage"] or event.program_stage
        event.org_unit = resolved["orgUnit"] or event.org_unit
        event.status = status
        event.occurred_at = occurred or event.occurred_at
        event.scheduled_at = scheduled or event.scheduled_at
        event.attribute_option_combo = str(
            ev.get("attributeOptionCombo") or event.attribute_option_combo
        )
        event.updated_at = stamp
    schemes_de = ev.get("_de_scheme", "UID")
    for dv in ev.get("dataValues") or []:
        de = world.resolve("data_elements", str(dv.get("dataElement")), str(schemes_de))
        if de is None:
            continue
        value = dv.get("value")
        if value is None or str(value) == "":
            event.data_values.pop(de, None)
            event.value_times.pop(de, None)
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        created = event.value_times.get(de, (stamp, stamp))[0]
        event.data_values[de] = text
        event.value_times[de] = (created, stamp)


def _apply_enrollment(fake: FakeDhis2, item: _Item, stamp: dt.datetime) -> None:
    world = fake.world
    en = item.data
    if item.action == "delete":
        world.enrollments[item.uid].deleted = True
        return
    enrolled = parse_when(fake, str(en["enrolledAt"])) if en.get("enrolledAt") else stamp
    occurred = parse_when(fake, str(en["occurredAt"])) if en.get("occurredAt") else enrolled
    if item.action == "create":
        record = Enrollment(
            item.uid,
            str(en["program"]),
            str(en["orgUnit"]),
            str(en["trackedEntity"]),
            str(en.get("status") or "ACTIVE"),
            enrolled,
            occurred,
            stamp,
            stamp,
        )
        world.enrollments[item.uid] = record
        te = world.tracked_entities.get(record.tracked_entity)
        if te is not None and item.uid not in te.enrollments:
            te.enrollments.append(item.uid)
    else:
        record = world.enrollments[item.uid]
        record.status = str(en.get("status") or record.status)
        record.org_unit = str(en.get("orgUnit") or record.org_unit)
        record.updated_at = stamp


def _apply_tracked_entity(fake: FakeDhis2, item: _Item, stamp: dt.datetime) -> None:
    world = fake.world
    data = item.data
    if item.action == "delete":
        world.tracked_entities[item.uid].deleted = True
        return
    attrs = {
        str(a["attribute"]): str(a.get("value"))
        for a in data.get("attributes") or []
        if a.get("value") is not None
    }
    if item.action == "create":
        world.tracked_entities[item.uid] = TrackedEntity(
            item.uid,
            str(data["orgUnit"]),
            str(data.get("trackedEntityType") or "nEenWmSyUEp"),
            attrs,
            stamp,
            stamp,
        )
    else:
        te = world.tracked_entities[item.uid]
        te.attributes.update(attrs)
        te.org_unit = str(data.get("orgUnit") or te.org_unit)
        te.updated_at = stamp


def run_import(
    fake: FakeDhis2,
    body: Json,
    *,
    strategy: str,
    atomic: str,
    commit: bool,
    user: User | None,
    schemes: _Schemes,
) -> Json:
    """Validate and (maybe) persist a tracker payload; return the ImportReport."""
    world = fake.world
    report = _Report()
    with world.lock:
        items = _collect(body)
        pending_te = {i.uid for i in items if i.kind == "TRACKED_ENTITY"}
        pending_en = {i.uid for i in items if i.kind == "ENROLLMENT"}
        tables: dict[str, dict[str, Any]] = {
            "TRACKED_ENTITY": world.tracked_entities,
            "ENROLLMENT": world.enrollments,
            "EVENT": world.events,
        }
        for item in items:
            existing = tables[item.kind].get(item.uid)
            action, error = _action(
                existing, bool(getattr(existing, "deleted", False)), strategy, item.kind, item.uid
            )
            item.action = action
            if error is not None:
                item.errors.append(error)
                continue
            if action == "delete":
                continue
            if item.kind == "EVENT":
                item.data["_de_scheme"] = schemes.data_element
                _validate_event(fake, item, schemes, pending_en)
            elif item.kind == "ENROLLMENT":
                _validate_enrollment(fake, item, pending_te)
            else:
                _validate_tracked_entity(fake, item)
        failed = [i for i in items if i.errors]
        for item in failed:
            report.errors.extend(item.errors)
        do_commit = commit and not (failed and atomic == "ALL")
        for item in items:
            report.indexes[(item.kind, item.uid)] = item.index
            if item.errors or not do_commit:
                report.ignored[item.kind] = report.ignored.get(item.kind, 0) + 1
                continue
        if do_commit:
            stamp = fake.tick()
            for item in items:
                if item.errors:
                    continue
                if item.kind == "TRACKED_ENTITY":
                    _apply_tracked_entity(fake, item, stamp)
                elif item.kind == "ENROLLMENT":
                    _apply_enrollment(fake, item, stamp)
                else:
                    _apply_event(fake, item, user, stamp)
                bucket = {
                    "create": report.created,
                    "update": report.updated,
                    "delete": report.deleted,
                }[item.action]
                bucket.setdefault(item.kind, []).append(item.uid)
    return report_json(fake, report, bundle=do_commit)


def _enum(fake: FakeDhis2, req: Request, name: str, allowed: Sequence[str], default: str) -> str:
    value = req.param(name)
    if value is None:
        return default
    if value in allowed:
        return value
    v = fake.server_version
    lenient = v.minor <= 37 or (v.minor == 38 and v.patch < 3) or (v.minor == 39 and v.patch == 0)
    if lenient:
        return default
    raise BadRequest(
        f"Value {value} is not a valid {name}. Valid values are: [{', '.join(allowed)}]"
    )


def _is_sync(fake: FakeDhis2, req: Request) -> bool:
    value = req.param("async")
    if fake.server_version.minor <= 41:
        return value == "false"  # Spring's params = {"async=false"}: literal and case-sensitive
    return value is not None and value.strip().lower() in ("false", "0", "no", "off")


def _notification(
    fake: FakeDhis2, category: str, message: str, completed: bool, when: dt.datetime
) -> dict[str, object]:
    uid = new_uid()
    return {
        "uid": uid,
        "level": "INFO",
        "category": category,
        "time": fmt_time(when),
        "message": message,
        "completed": completed,
        "id": uid,
    }


@_guard
def handle_import(fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``POST /api/tracker``: synchronous ImportReport or an async job."""
    strategy = _enum(fake, req, "importStrategy", STRATEGIES, "CREATE_AND_UPDATE")
    atomic = _enum(fake, req, "atomicMode", ("ALL", "OBJECT"), "ALL")
    mode = _enum(fake, req, "importMode", ("COMMIT", "VALIDATE"), "COMMIT")
    _enum(fake, req, "reportMode", ("FULL", "ERRORS", "WARNINGS"), "ERRORS")
    try:
        body = json.loads(req.body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"JSON parse error: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("JSON parse error: expected an object")
    report = run_import(
        fake,
        body,
        strategy=strategy,
        atomic=atomic,
        commit=mode == "COMMIT",
        user=user,
        schemes=_Schemes.from_request(req),
    )
    if _is_sync(fake, req):
        return json_response(409 if report["status"] == "ERROR" else 200, report)
    created = fake.tick()
    job_uid = new_uid()
    stats = report["stats"]
    done = (
        f"Import complete with status {report['status']}, {stats['created']} created, "
        f"{stats['updated']} updated, {stats['deleted']} deleted, {stats['ignored']} ignored"
    )
    notes = [
        _notification(
            fake, "TRACKER_IMPORT_JOB", done, True, created + dt.timedelta(milliseconds=40)
        ),
        _notification(fake, "TRACKER_IMPORT_JOB", "(admin) Import:Start", False, created),
    ]
    with fake.world.lock:
        fake.world.jobs[job_uid] = Job(job_uid, "TRACKER_IMPORT_JOB", created, notes, report)
    location = f"{req.base_url}/api/tracker/jobs/{job_uid}"
    response: Json = {"id": job_uid, "location": location}
    if fake.server_version.minor <= 40:
        response = {"responseType": "TrackerJob", **response}
    return web_message(
        200, "Tracker job added", response=response, headers=[("Location", location)]
    )


def _job(fake: FakeDhis2, uid: str, job_type: str) -> Job | None:
    with fake.world.lock:
        job = fake.world.jobs.get(uid)
    return job if job is not None and job.job_type == job_type else None


@_guard
def handle_job(fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/tracker/jobs/<uid>``: notifications, newest first."""
    job = _job(fake, m.group("uid"), "TRACKER_IMPORT_JOB")
    return json_response(200, job.notifications if job else [])


@_guard
def handle_job_report(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """``GET /api/tracker/jobs/<uid>/report``: the ImportReport of a finished job."""
    job = _job(fake, m.group("uid"), "TRACKER_IMPORT_JOB")
    if job is None:
        return web_message(404, f"TrackerImportReport not found for ID {m.group('uid')}")
    return json_response(200, job.result)


# --- legacy POST /api/events ----------------------------------------------------------------

_LEGACY_TO_NEW = {
    "eventDate": "occurredAt",
    "dueDate": "scheduledAt",
    "completedDate": "completedAt",
    "trackedEntityInstance": "trackedEntity",
}


@_guard
def handle_legacy_import(
    fake: FakeDhis2, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """Legacy ``POST /api/events`` (2.36-2.41): ``strategy`` param, 409 on any conflict."""
    strategy = (req.param("strategy") or "CREATE_AND_UPDATE").upper()
    if strategy == "NEW_AND_UPDATES":
        strategy = "CREATE_AND_UPDATE"
    if strategy not in STRATEGIES:
        raise BadRequest(f"Value {strategy} is not a valid strategy.")
    try:
        body = json.loads(req.body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"JSON parse error: {exc}") from None
    events = body.get("events") if isinstance(body, dict) and "events" in body else [body]
    summaries: list[Json] = []
    counts = {"imported": 0, "updated": 0, "deleted": 0, "ignored": 0}
    for raw in events or []:
        ev = {_LEGACY_TO_NEW.get(k, k): v for k, v in raw.items()}
        report = run_import(
            fake,
            {"events": [ev]},
            strategy=strategy,
            atomic="ALL",
            commit=True,
            user=user,
            schemes=_Schemes.from_request(req),
        )
        uid = str(ev.get("event") or "")
        errors = report["validationReport"]["errorReports"]
        stats = report["stats"]
        summary_counts = {
            "imported": stats["created"],
            "updated": stats["updated"],
            "ignored": stats["ignored"],
            "deleted": stats["deleted"],
        }
        for k in counts:
            counts[k] += summary_counts[k]
        ref = uid
        if not ref:
            bundle = report.get("bundleReport", {}).get("typeReportMap", {}).get("EVENT", {})
            objects = bundle.get("objectReports") or [{}]
            ref = objects[0].get("uid", "")
        summary: Json = {
            "responseType": "ImportSummary",
            "status": "ERROR" if errors else "SUCCESS",
            "importCount": summary_counts,
            "conflicts": [{"object": e["uid"], "value": e["message"]} for e in errors],
        }
        if ref:
            summary["reference"] = ref
            summary["href"] = f"{req.base_url}/api/events/{ref}"
        summaries.append(summary)
    failed = any(s["status"] != "SUCCESS" for s in summaries)
    response: Json = {
        "responseType": "ImportSummaries",
        "status": "ERROR" if failed else "SUCCESS",
        **counts,
        "total": sum(counts.values()),
        "importSummaries": summaries,
    }
    if failed:
        return web_message(
            409, "An error occurred, please check import summary.", state="ERROR", response=response
        )
    return web_message(200, "Import was successful.", response=response)
