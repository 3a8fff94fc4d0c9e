"""Tracker imports: ``POST /api/tracker``, its reports and jobs, and legacy ``POST /api/events``.

Every item is validated first, then applied; the answer is the tracker import report of the
server's version. ``POST /api/tracker`` is synchronous only with the literal ``async=false`` up to
2.41 (see WEB_API.md §5).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dhis2_lmis.testing._host import Host
from dhis2_lmis.testing._metadata import fmt_time
from dhis2_lmis.testing._server import Request, Response, json_response, web_message
from dhis2_lmis.testing._tracker import (
    BadRequest,
    Json,
    Schemes,
    guard,
    numeric_problem,
    parse_when,
)
from dhis2_lmis.testing._world import (
    DEFAULT_COC,
    Enrollment,
    Event,
    Job,
    TrackedEntity,
    User,
    new_uid,
)

__all__ = [
    "handle_import",
    "handle_job",
    "handle_job_report",
    "handle_legacy_import",
    "report_json",
    "run_import",
]

EVENT_STATUSES = {"ACTIVE", "COMPLETED", "VISITED", "SCHEDULE", "OVERDUE", "SKIPPED"}

STRATEGIES = ("CREATE", "UPDATE", "CREATE_AND_UPDATE", "DELETE")


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


def report_json(fake: Host, report: _Report, *, bundle: bool) -> Json:
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


def _validate_event(fake: Host, item: _Item, schemes: Schemes, pending: set[str]) -> None:
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


def _validate_enrollment(fake: Host, item: _Item, pending: set[str]) -> None:
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


def _validate_tracked_entity(fake: Host, item: _Item) -> None:
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


def _apply_event(fake: Host, item: _Item, user: User | None, stamp: dt.datetime) -> None:
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


def _apply_enrollment(fake: Host, item: _Item, stamp: dt.datetime) -> None:
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


def _apply_tracked_entity(fake: Host, item: _Item, stamp: dt.datetime) -> None:
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
    fake: Host,
    body: Json,
    *,
    strategy: str,
    atomic: str,
    commit: bool,
    user: User | None,
    schemes: Schemes,
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


def _enum(fake: Host, req: Request, name: str, allowed: Sequence[str], default: str) -> str:
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


def _is_sync(fake: Host, req: Request) -> bool:
    value = req.param("async")
    if fake.server_version.minor <= 41:
        return value == "false"  # Spring's params = {"async=false"}: literal and case-sensitive
    return value is not None and value.strip().lower() in ("false", "0", "no", "off")


def _notification(
    fake: Host, category: str, message: str, completed: bool, when: dt.datetime
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


@guard
def handle_import(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
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
        schemes=Schemes.from_request(req),
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


def _job(fake: Host, uid: str, job_type: str) -> Job | None:
    with fake.world.lock:
        job = fake.world.jobs.get(uid)
    return job if job is not None and job.job_type == job_type else None


@guard
def handle_job(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/tracker/jobs/<uid>``: notifications, newest first."""
    job = _job(fake, m.group("uid"), "TRACKER_IMPORT_JOB")
    return json_response(200, job.notifications if job else [])


@guard
def handle_job_report(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
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


@guard
def handle_legacy_import(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
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
            schemes=Schemes.from_request(req),
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
