"""Tracker reads: events (new and legacy), tracked entities and enrollments.

Per-version differences implemented here (see WEB_API.md §4, §5):

- envelopes: 2.36-2.40 ``{"instances", "page", "pageSize"}``; 2.41 ``pager`` plus the flat
  fields and ``events``; 2.42+ ``pager`` with ``nextPage``/``prevPage`` links and ``events``;
- ``ouMode`` (<=2.41) vs ``orgUnitMode`` (2.41+; both on 2.41 is a 400; 2.42 ignores ``ouMode``);
- ``skipPaging`` (<=2.41) vs ``paging=false`` (2.41+); ``event=a;b`` vs ``events=a,b``;
- ``order`` with legacy names on 2.36, new names from 2.37; ``fields`` honoured from 2.38;
- event JSON: ``orgUnitName`` <=2.40, ``followup``/``followUp``, user objects from 2.38.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dhis2_lmis.testing._fields import FieldSpec, apply_fields, parse_fields
from dhis2_lmis.testing._host import Host
from dhis2_lmis.testing._metadata import fmt_time
from dhis2_lmis.testing._server import Request, Response, json_response, web_message
from dhis2_lmis.testing._tracker import (
    BadRequest,
    Json,
    Schemes,
    guard,
    parse_when,
    split_values,
)
from dhis2_lmis.testing._world import (
    DEFAULT_CATEGORY_OPTION,
    Enrollment,
    Event,
    TrackedEntity,
    User,
)

__all__ = [
    "enrollment_json",
    "event_json",
    "handle_enrollments",
    "handle_event",
    "handle_events",
    "handle_legacy_event",
    "handle_legacy_events",
    "handle_tracked_entities",
    "handle_tracked_entity",
    "legacy_event_json",
    "scope_org_units",
    "tracked_entity_json",
]

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
_T = TypeVar("_T")


def scope_org_units(
    fake: Host, user: User | None, org_units: Sequence[str], mode: str | None
) -> set[str] | None:
    """The org units a tracker query covers; None means every org unit (mode ALL).

    Raises:
        BadRequest: unknown org unit or a mode that cannot go with an org unit (2.41+).
    """
    world = fake.world
    minor = fake.server_version.minor
    chosen = (mode or ("SELECTED" if org_units else "ACCESSIBLE")).upper()
    if chosen not in (
        "SELECTED",
        "CHILDREN",
        "DESCENDANTS",
        "ACCESSIBLE",
        "CAPTURE",
        "ALL",
    ):
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


def _mode(fake: Host, req: Request) -> str | None:
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


def _paging(fake: Host, req: Request, *, legacy: bool = False) -> _Paging:
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
    fake: Host,
    req: Request,
    key_new: str,
    items: list[Any],
    paging: _Paging,
    *,
    total: int,
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


def _user_ref(fake: Host, username: str) -> Json | str:
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


def event_json(fake: Host, req: Request, e: Event, schemes: Schemes) -> Json:
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


def _event_filters(fake: Host, req: Request) -> list[Callable[[Event], bool]]:
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


def _sort_events(fake: Host, req: Request, events: list[Event], *, legacy: bool) -> None:
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


def _select_events(fake: Host, req: Request, user: User | None, *, legacy: bool) -> list[Event]:
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
        ids = split_values(req.params("event"), ";")
    else:
        after, before = req.param("updatedAfter"), req.param("updatedBefore")
        occ_after, occ_before = req.param("occurredAfter"), req.param("occurredBefore")
        te = req.param("trackedEntity")
        if minor <= 40:
            ids = split_values(req.params("event"), ";")
        elif minor == 41:
            ids = split_values(req.params("events"), ",") + split_values(req.params("event"), ";")
        else:
            ids = split_values(req.params("events"), ",")
    enrollments = split_values(req.params("enrollment"), ";")
    if minor >= 41 and not legacy:
        enrollments += split_values(req.params("enrollments"), ",")
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


def _fields_spec(fake: Host, req: Request, default: str) -> FieldSpec | None:
    if fake.server_version.minor <= 37:
        return None
    return parse_fields(",".join(req.params("fields")) or default)


@guard
def handle_events(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/tracker/events``."""
    events = _select_events(fake, req, user, legacy=False)
    paging = _paging(fake, req)
    schemes = Schemes.from_request(req)
    spec = _fields_spec(fake, req, "*,!relationships")
    shape = (
        req.base_url,
        req.api_version,
        str(schemes),
        ",".join(req.params("fields")),
    )

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


@guard
def handle_event(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/tracker/events/<uid>``: the bare event."""
    with fake.world.lock:
        event = fake.world.events.get(m.group("uid"))
        if event is None:
            return web_message(404, f"Event with id {m.group('uid')} could not be found.")
        body = event_json(fake, req, event, Schemes.from_request(req))
    spec = _fields_spec(fake, req, "*,!relationships")
    return json_response(200, apply_fields(spec, body) if spec else body)


_LEGACY_DEFAULT_HIDDEN_36 = {
    "programStage",
    "attributeOptionCombo",
    "dueDate",
    "completedDate",
    "storedBy",
    "deleted",
}

_LEGACY_DEFAULT_HIDDEN_40 = {"dueDate", "completedDate", "storedBy"}


# --- legacy /api/events ---------------------------------------------------------------------


def legacy_event_json(fake: Host, req: Request, e: Event, schemes: Schemes) -> Json:
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


def _legacy_fields(fake: Host, req: Request, items: list[Json]) -> list[Json]:
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


@guard
def handle_legacy_events(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """Legacy ``GET /api/events`` (2.36-2.41)."""
    events = _select_events(fake, req, user, legacy=True)
    paging = _paging(fake, req, legacy=True)
    schemes = Schemes.from_request(req)
    with fake.world.lock:
        page_items = _legacy_fields(
            fake,
            req,
            [legacy_event_json(fake, req, e, schemes) for e in _page_of(events, paging)],
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


@guard
def handle_legacy_event(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """Legacy ``GET /api/events/<uid>``."""
    with fake.world.lock:
        event = fake.world.events.get(m.group("uid"))
        if event is None:
            return web_message(404, f"Event not found for ID {m.group('uid')}")
        body = legacy_event_json(fake, req, event, Schemes.from_request(req))
    return json_response(200, _legacy_fields(fake, req, [body])[0])


# --- tracked entities and enrollments --------------------------------------------------------


def enrollment_json(fake: Host, en: Enrollment) -> Json:
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


def tracked_entity_json(fake: Host, te: TrackedEntity) -> Json:
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


def _org_unit_params(fake: Host, req: Request) -> list[str]:
    minor = fake.server_version.minor
    out: list[str] = []
    if minor <= 41:
        out += split_values(req.params("orgUnit"), ";")
    if minor >= 41:
        out += split_values(req.params("orgUnits"), ",")
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


@guard
def handle_tracked_entities(
    fake: Host, req: Request, m: re.Match[str], user: User | None
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
    wanted = split_values(req.params("trackedEntity"), ";") if minor <= 41 else []
    if minor >= 41:
        wanted += split_values(req.params("trackedEntities"), ",")
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


@guard
def handle_tracked_entity(
    fake: Host, req: Request, m: re.Match[str], user: User | None
) -> Response:
    """``GET /api/tracker/trackedEntities/<uid>``."""
    with fake.world.lock:
        te = fake.world.tracked_entities.get(m.group("uid"))
        if te is None:
            return web_message(404, f"TrackedEntity with id {m.group('uid')} could not be found.")
        body = tracked_entity_json(fake, te)
    spec = parse_fields(",".join(req.params("fields")) or "*,!relationships")
    return json_response(200, apply_fields(spec, body))


@guard
def handle_enrollments(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
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
