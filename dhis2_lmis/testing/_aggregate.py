"""Aggregate data: ``/api/dataValueSets`` import and export, and the async task endpoints.

Import responses by version (WEB_API.md §6.3): 2.36 a bare ImportSummary with ``{object,value}``
conflicts and HTTP 200; 2.37 a bare summary with full conflict objects, HTTP 200; 2.38+ a
WebMessage (HTTP 409 on any conflict or abort); ``/api/37/dataValueSets`` keeps the bare shape on
2.38-2.41. ``rejectedIndexes`` from 2.39.2/2.40.1/2.41; unchanged values are counted as ``ignored``
from 2.39.5/2.40.3/2.41 (earlier they count as ``updated``).

A zero for a numeric data element whose ``zeroIsSignificant`` is false is not stored: it is
counted as ``ignored`` with no conflict on every version (or ``deleted`` when it replaces a
stored value), as DHIS2 does for insignificant zeros.

Values are judged as DHIS2's ``ValidationUtils.valueIsValid`` judges them (``E7619``, reason
keys such as ``value_not_integer``), options as ``E7621``, and periods as the data set allows
them now: ``expiryDays`` (``E7640``, not for users with ``ALL`` or ``F_EDIT_EXPIRED``),
``openFuturePeriods`` (``E7641``) and data input periods (``E7643``). These rules are written
here independently of the library's preflight, so the tests that compare the two are real.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from dhis2_lmis.testing._host import Host
from dhis2_lmis.testing._metadata import fmt_time
from dhis2_lmis.testing._periods import period_range
from dhis2_lmis.testing._server import Request, Response, json_response, web_message
from dhis2_lmis.testing._tracker import BadRequest, parse_when
from dhis2_lmis.testing._version import FakeVersion
from dhis2_lmis.testing._world import (
    DEFAULT_COC,
    AggregateValue,
    DataElement,
    DataSet,
    Job,
    User,
    new_uid,
)

__all__ = ["handle_get", "handle_post", "handle_task", "handle_task_summary", "import_data_values"]

Json = dict[str, Any]


@dataclass
class _Conflict:
    obj: str
    value: str
    code: str
    prop: str
    objects: dict[str, str]
    indexes: list[int] = field(default_factory=list)


@dataclass
class _Summary:
    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0
    conflicts: list[_Conflict] = field(default_factory=list)
    aborted: bool = False
    complete: str = "false"

    def conflict(
        self, code: str, obj: str, value: str, prop: str, *, kind: str, index: int | None
    ) -> None:
        for c in self.conflicts:
            if (c.code, c.obj, c.value) == (code, obj, value):
                if index is not None:
                    c.indexes.append(index)
                return
        self.conflicts.append(
            _Conflict(obj, value, code, prop, {kind: obj}, [] if index is None else [index])
        )


def _rejected_indexes_supported(v: FakeVersion) -> bool:
    return v.minor >= 41 or (v.minor == 39 and v.patch >= 2) or (v.minor == 40 and v.patch >= 1)


def _unchanged_ignored(v: FakeVersion) -> bool:
    return v.minor >= 41 or (v.minor == 39 and v.patch >= 5) or (v.minor == 40 and v.patch >= 3)


@dataclass
class _Options:
    dry_run: bool
    strategy: str
    strict_periods: bool
    strict_combos: bool
    is_async: bool
    de_scheme: str
    ou_scheme: str
    coc_scheme: str
    aoc_scheme: str
    ds_scheme: str

    @classmethod
    def parse(cls, req: Request, body: Json) -> _Options:
        def scheme(name: str, general: str) -> str:
            return str(req.param(name) or body.get(name) or general).upper()

        general = str(req.param("idScheme") or body.get("idScheme") or "UID").upper()
        strategy = (
            req.param("importStrategy") or req.param("strategy") or "CREATE_AND_UPDATE"
        ).upper()
        if strategy == "NEW_AND_UPDATES":
            strategy = "CREATE_AND_UPDATE"
        return cls(
            dry_run=req.flag("dryRun"),
            strategy=strategy,
            strict_periods=req.flag("strictPeriods"),
            strict_combos=req.flag("strictCategoryOptionCombos"),
            is_async=req.flag("async"),
            de_scheme=scheme("dataElementIdScheme", general),
            ou_scheme=scheme("orgUnitIdScheme", general),
            coc_scheme=scheme("categoryOptionComboIdScheme", general),
            aoc_scheme=scheme("attributeOptionComboIdScheme", general),
            ds_scheme=scheme("dataSetIdScheme", general),
        )

    def json(self) -> Json:
        id_schemes: Json = {}
        for key, value in (
            ("dataElementIdScheme", self.de_scheme),
            ("orgUnitIdScheme", self.ou_scheme),
            ("categoryOptionComboIdScheme", self.coc_scheme),
            ("dataSetIdScheme", self.ds_scheme),
        ):
            if value != "UID":
                id_schemes[key] = {"type": value}
        return {
            "idSchemes": id_schemes,
            "dryRun": self.dry_run,
            "async": self.is_async,
            "importStrategy": self.strategy,
            "mergeMode": "REPLACE",
            "reportMode": "FULL",
            "skipExistingCheck": False,
            "sharing": False,
            "skipNotifications": False,
            "skipAudit": False,
            "datasetAllowsPeriods": False,
            "strictPeriods": self.strict_periods,
            "strictDataElements": False,
            "strictCategoryOptionCombos": self.strict_combos,
            "strictAttributeOptionCombos": False,
            "strictOrganisationUnits": False,
            "requireCategoryOptionCombo": False,
            "requireAttributeOptionCombo": False,
            "skipPatternValidation": False,
            "ignoreEmptyCollection": False,
            "force": False,
            "firstRowIsHeader": True,
            "skipLastUpdated": False,
            "mergeDataValues": False,
            "skipCache": False,
        }


_NUMERIC_TYPES = frozenset(
    {
        "NUMBER",
        "UNIT_INTERVAL",
        "PERCENTAGE",
        "INTEGER",
        "INTEGER_POSITIVE",
        "INTEGER_NEGATIVE",
        "INTEGER_ZERO_OR_POSITIVE",
    }
)
_INTEGER_PATTERNS = {
    "INTEGER": r"0|-?[1-9]\d*",
    "PERCENTAGE": r"0|-?[1-9]\d*",
    "INTEGER_POSITIVE": r"[1-9]\d*",
    "INTEGER_ZERO_OR_POSITIVE": r"0|[1-9]\d*",
    "INTEGER_NEGATIVE": r"-[1-9]\d*",
}
_INTEGER_KEYS = {
    "INTEGER": "value_not_integer",
    "PERCENTAGE": "value_not_percentage",
    "INTEGER_POSITIVE": "value_not_positive_integer",
    "INTEGER_ZERO_OR_POSITIVE": "value_not_zero_or_positive_integer",
    "INTEGER_NEGATIVE": "value_not_negative_integer",
}


def _normal_boolean(value: str, value_type: str, version: FakeVersion) -> str:
    """DHIS2 rewrites boolean spellings before checking: 1/t/True as true (and, for BOOLEAN,
    0/f/False as false); 2.43 also takes y/yes and n/no, in any case."""
    yes = value in ("true", "True", "TRUE", "t", "T", "1")
    no = value in ("false", "False", "FALSE", "f", "F", "0")
    if version.minor >= 43:
        yes = yes or value.lower() in ("y", "yes")
        no = no or value.lower() in ("n", "no")
    if yes:
        return "true"
    if no and value_type == "BOOLEAN":
        return "false"
    return value


def _value_problem(value: str, element: DataElement) -> str | None:
    """The reason key DHIS2 gives for a value (booleans already rewritten) its data element
    cannot take, or None."""
    kind = element.value_type
    if len(value) > 50_000:
        return "value_length_greater_than_max_length"
    if kind in ("NUMBER", "UNIT_INTERVAL"):
        if len(value) >= 250 or not re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?", value):
            return "value_not_numeric"
        if kind == "UNIT_INTERVAL" and not 0 <= float(value) <= 1:
            return "value_not_unit_interval"
    elif kind in _INTEGER_PATTERNS:
        fits = re.fullmatch(_INTEGER_PATTERNS[kind], value) and -(2**31) <= int(value) < 2**31
        if not fits or (kind == "PERCENTAGE" and not 0 <= int(value) <= 100):
            return _INTEGER_KEYS[kind]
    elif kind == "BOOLEAN" and value.lower() not in ("true", "false"):
        return "value_not_bool"
    elif kind == "TRUE_ONLY" and value.lower() != "true":
        return "value_not_true_only"
    return None


def _period_closed(
    fake: Host,
    targets: list[DataSet],
    pe: str,
    info: tuple[str, dt.date, dt.date],
    user: User | None,
) -> tuple[str, str] | None:
    """The conflict (code, message) when no target data set takes values of ``pe`` now.

    Data input periods, when a data set has any, bind every user; ``expiryDays`` and
    ``openFuturePeriods`` only users without ``ALL`` or ``F_EDIT_EXPIRED`` (as 2.43 judges).
    """
    now = fake.now
    exempt = user is None or not {"ALL", "F_EDIT_EXPIRED"}.isdisjoint(user.authorities)
    late = fake.server_version.minor >= 43  # 2.43 keeps a period open through its last day
    conflict: tuple[str, str] | None = None
    for ds in targets:
        if ds.input_periods:
            if any(
                p.period == pe
                and (p.opening is None or p.opening <= now)
                and (p.closing is None or now <= p.closing)
                for p in ds.input_periods
            ):
                return None
            conflict = conflict or (
                "E7643",
                f"Period: `{pe}` is not open for this data set at this time: `{ds.uid}`",
            )
            continue
        if exempt:
            return None
        if _periods_ahead(now.date(), info) > ds.open_future_periods:
            conflict = conflict or (
                "E7641",
                f"Period: `{pe}` is after latest open future period for data set: `{ds.uid}`",
            )
            continue
        closes = dt.datetime.combine(info[2], dt.time()) + dt.timedelta(
            days=ds.expiry_days + (1 if late else 0)
        )
        if ds.expiry_days > 0 and now > closes:
            conflict = conflict or (
                "E7640",
                f"Current date is past expiry days for period: `{pe}`  and data set: `{ds.uid}`",
            )
            continue
        return None
    return conflict


def _periods_ahead(today: dt.date, info: tuple[str, dt.date, dt.date]) -> int:
    """How many periods of its type ``info`` lies after the one holding ``today``."""
    _, start, end = info
    if info[0] in ("Daily", "Weekly", "BiWeekly") or info[0].startswith("Weekly"):
        length = (end - start).days + 1
        return -((today - start).days // length)
    months = (end.year * 12 + end.month) - (start.year * 12 + start.month) + 1
    return -(((today.year * 12 + today.month) - (start.year * 12 + start.month)) // months)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def import_data_values(fake: Host, body: Json, opts: _Options, user: User | None) -> _Summary:
    """Validate and upsert a data value set; the summary counts and conflicts."""
    world = fake.world
    summary = _Summary()
    username = user.username if user else "admin"
    with world.lock:
        ds_ref = body.get("dataSet")
        ds = world.resolve("data_sets", str(ds_ref), opts.ds_scheme) if ds_ref else None
        if ds_ref and ds is None:
            summary.aborted = True
            summary.conflict(
                "E7600",
                str(ds_ref),
                f"Data set not found or not accessible: `{ds_ref}`",
                "dataSet",
                kind="dataSet",
                index=None,
            )
            return summary
        top_ou_ref = body.get("orgUnit")
        top_ou = world.resolve("org_units", str(top_ou_ref), opts.ou_scheme) if top_ou_ref else None
        if top_ou_ref and top_ou is None:
            summary.aborted = True
            summary.conflict(
                "E7603",
                str(top_ou_ref),
                f"Org unit not found or not accessible: `{top_ou_ref}`",
                "orgUnit",
                kind="organisationUnit",
                index=None,
            )
            return summary
        top_pe = body.get("period")
        top_aoc = body.get("attributeOptionCombo")
        stamp = fake.tick()
        for index, dv in enumerate(body.get("dataValues") or []):
            de_ref = str(dv.get("dataElement"))
            de = world.resolve("data_elements", de_ref, opts.de_scheme)
            if de is None:
                summary.conflict(
                    "E7610",
                    de_ref,
                    f"Data element not found or not accessible: `{de_ref}`",
                    "dataElement",
                    kind="dataElement",
                    index=index,
                )
                summary.ignored += 1
                continue
            pe = str(dv.get("period") or top_pe or "")
            pe_info = period_range(pe, fake.server_version)
            if pe_info is None:
                summary.conflict(
                    "E7611", pe, f"Period not valid: `{pe}`", "period", kind="period", index=index
                )
                summary.ignored += 1
                continue
            ou_ref = str(dv.get("orgUnit") or top_ou_ref or "")
            ou = world.resolve("org_units", ou_ref, opts.ou_scheme) if ou_ref else None
            if ou is None:
                summary.conflict(
                    "E7612",
                    ou_ref,
                    f"Organisation unit not found or not accessible: `{ou_ref}`",
                    "orgUnit",
                    kind="organisationUnit",
                    index=index,
                )
                summary.ignored += 1
                continue
            coc_ref = dv.get("categoryOptionCombo")
            coc = (
                world.resolve("category_option_combos", str(coc_ref), opts.coc_scheme)
                if coc_ref
                else DEFAULT_COC
            )
            if coc is None:
                summary.conflict(
                    "E7613",
                    str(coc_ref),
                    "Category option combo not found or not accessible for writing data: "
                    f"`{coc_ref}`",
                    "categoryOptionCombo",
                    kind="categoryOptionCombo",
                    index=index,
                )
                summary.ignored += 1
                continue
            aoc_ref = dv.get("attributeOptionCombo") or top_aoc
            aoc = (
                world.resolve("category_option_combos", str(aoc_ref), opts.aoc_scheme)
                if aoc_ref
                else DEFAULT_COC
            )
            if aoc is None:
                summary.conflict(
                    "E7615",
                    str(aoc_ref),
                    "Attribute option combo not found or not accessible for writing data: "
                    f"`{aoc_ref}`",
                    "attributeOptionCombo",
                    kind="categoryOptionCombo",
                    index=index,
                )
                summary.ignored += 1
                continue
            element = world.data_elements[de]
            foreign = world.category_option_combos[coc].category_combo != element.category_combo
            if opts.strict_combos and foreign:
                summary.conflict(
                    "E7634",
                    world.identify("category_option_combos", coc, opts.coc_scheme),
                    f"Category option combo: `{coc}` must be part of category combo of data "
                    f"element: `{de}`",
                    "categoryOptionCombo",
                    kind="categoryOptionCombo",
                    index=index,
                )
                summary.ignored += 1
                continue
            if opts.strict_periods:
                types = {d.period_type for d in world.data_sets.values() if de in d.data_elements}
                if pe_info[0] not in types:  # DHIS2: none when no data set holds it
                    summary.conflict(
                        "E7632",
                        pe,
                        f"Period type of period: `{pe}` not valid for data element: `{de}`",
                        "period",
                        kind="period",
                        index=index,
                    )
                    summary.ignored += 1
                    continue
            value = _text(dv.get("value"))
            comment = _text(dv.get("comment"))
            if value and element.value_type in ("BOOLEAN", "TRUE_ONLY"):
                value = _normal_boolean(value, element.value_type, fake.server_version)
            key = (de, pe, ou, coc, aoc)
            existing = world.data_values.get(key)
            if value:
                problem = _value_problem(value, element)
                if problem is not None:
                    summary.conflict(
                        "E7619",
                        value,
                        f"Value must match data element's `{de}` type constraints: {problem}",
                        "value",
                        kind="value",
                        index=index,
                    )
                    summary.ignored += 1
                    continue
                options = world.option_sets.get(element.option_set or "")
                if options is not None and value not in options.options:
                    summary.conflict(
                        "E7621",
                        value,
                        f"Data value is not a valid option of the data element option set: `{de}`",
                        "value",
                        kind="value",
                        index=index,
                    )
                    summary.ignored += 1
                    continue
            targets = (
                [ds] if ds else [d.uid for d in world.data_sets.values() if de in d.data_elements]
            )
            closed = (
                _period_closed(fake, [world.data_sets[t] for t in targets], pe, pe_info, user)
                if targets
                else None
            )
            if closed is not None:
                summary.conflict(closed[0], pe, closed[1], "period", kind="period", index=index)
                summary.ignored += 1
                continue
            insignificant_zero = (
                bool(value)
                and element.value_type in _NUMERIC_TYPES
                and float(value or 0) == 0
                and not element.zero_is_significant
            )
            empty = value is None or value == ""
            if opts.strategy == "DELETE" or ((empty and not comment) or insignificant_zero):
                if existing is not None and opts.strategy != "CREATE":
                    summary.deleted += 1
                    if not opts.dry_run:
                        del world.data_values[key]
                else:
                    summary.ignored += 1
                continue
            if (opts.strategy == "CREATE" and existing is not None) or (
                opts.strategy == "UPDATE" and existing is None
            ):
                summary.ignored += 1
                continue
            if existing is not None:
                unchanged = existing.value == value and existing.comment == comment
                if unchanged and _unchanged_ignored(fake.server_version):
                    summary.ignored += 1
                    continue
                summary.updated += 1
                if not opts.dry_run:
                    existing.value = value or ""
                    existing.comment = comment
                    existing.last_updated = stamp
                    existing.stored_by = username
                continue
            summary.imported += 1
            if not opts.dry_run:
                world.data_values[key] = AggregateValue(
                    de,
                    pe,
                    ou,
                    coc,
                    aoc,
                    value or "",
                    username,
                    stamp,
                    stamp,
                    comment,
                    bool(dv.get("followup", False)),
                )
        complete = body.get("completeDate")
        if ds and complete and top_pe and top_ou and str(complete).lower() != "false":
            day = (
                fake.now.date()
                if str(complete).lower() == "true"
                else parse_when(fake, str(complete)).date()
            )
            summary.complete = day.isoformat()
            if not opts.dry_run:
                world.complete_dates[(ds, str(top_pe), top_ou)] = day
    return summary


def summary_json(fake: Host, summary: _Summary, opts: _Options) -> Json:
    """The ImportSummary in the version's shape."""
    version = fake.server_version
    status = "ERROR" if summary.aborted else "WARNING" if summary.conflicts else "SUCCESS"
    conflicts: list[Json] = []
    for c in summary.conflicts:
        if version.minor == 36:
            conflicts.append(
                {
                    "object": c.obj,
                    "value": c.value.split(": `")[0]
                    if c.code in ("E7610", "E7612", "E7613", "E7615")
                    else c.value,
                }
            )
        else:
            item: Json = {
                "object": c.obj,
                "objects": c.objects,
                "value": c.value,
                "errorCode": c.code,
                "property": c.prop,
            }
            if c.indexes:
                item["indexes"] = c.indexes
            conflicts.append(item)
    out: Json = {
        "responseType": "ImportSummary",
        "status": status,
        "importOptions": opts.json(),
        "description": "Import process was aborted"
        if summary.aborted
        else "Import process completed successfully",
        "importCount": {
            "imported": summary.imported,
            "updated": summary.updated,
            "ignored": summary.ignored,
            "deleted": summary.deleted,
        },
        "conflicts": conflicts,
    }
    if _rejected_indexes_supported(version):
        out["rejectedIndexes"] = sorted({i for c in summary.conflicts for i in c.indexes})
    out["dataSetComplete"] = summary.complete
    return out


def _wrap(summary: Json) -> Response:
    status = summary["status"]
    if status == "SUCCESS":
        return web_message(200, "Import was successful.", response=summary)
    if status == "WARNING":
        return web_message(
            409,
            "One more conflicts encountered, please check import summary.",
            state="WARNING",
            response=summary,
        )
    return web_message(
        409, "An error occurred, please check import summary.", state="ERROR", response=summary
    )


def _guarded(fn: Any) -> Any:
    def wrapped(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
        try:
            result: Response = fn(fake, req, m, user)
        except BadRequest as exc:
            return web_message(exc.status, str(exc))
        return result

    wrapped.__doc__ = fn.__doc__
    return wrapped


@_guarded
def handle_post(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``POST /api/dataValueSets``."""
    try:
        body = json.loads(req.body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"JSON parse error: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("JSON parse error: expected an object")
    opts = _Options.parse(req, body)
    summary = summary_json(fake, import_data_values(fake, body, opts, user), opts)
    if opts.is_async:
        created = fake.tick()
        uid = new_uid()
        notes: list[dict[str, object]] = [
            {
                "uid": new_uid(),
                "level": "INFO",
                "category": "DATAVALUE_IMPORT",
                "time": fmt_time(created + dt.timedelta(milliseconds=30)),
                "message": "Import done. Completed in 0.030 seconds.",
                "completed": True,
            },
            {
                "uid": new_uid(),
                "level": "INFO",
                "category": "DATAVALUE_IMPORT",
                "time": fmt_time(created),
                "message": "Process started",
                "completed": False,
            },
        ]
        with fake.world.lock:
            fake.world.jobs[uid] = Job(uid, "DATAVALUE_IMPORT", created, notes, summary)
        return web_message(
            200,
            "Initiated dataValueImport",
            response={
                "name": "dataValueImport",
                "id": uid,
                "created": fmt_time(created),
                "jobType": "DATAVALUE_IMPORT",
                "relativeNotifierEndpoint": f"/api/system/tasks/DATAVALUE_IMPORT/{uid}",
            },
        )
    minor = fake.server_version.minor
    plain = minor <= 37 or (req.api_version is not None and req.api_version < 38 and minor <= 41)
    if plain:
        return json_response(200, summary)
    return _wrap(summary)


@_guarded
def handle_task(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/system/tasks/<type>/<uid>``: notifications, newest first."""
    with fake.world.lock:
        job = fake.world.jobs.get(m.group("uid"))
    if job is None or job.job_type != m.group("type"):
        return json_response(200, [])
    return json_response(200, job.notifications)


@_guarded
def handle_task_summary(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/system/taskSummaries/<type>/<uid>``: the bare ImportSummary."""
    with fake.world.lock:
        job = fake.world.jobs.get(m.group("uid"))
    if job is None or job.job_type != m.group("type"):
        return web_message(404, f"Task summary not found for ID {m.group('uid')}")
    return json_response(200, job.result)


@_guarded
def handle_get(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/dataValueSets``: values of data sets for periods and org units."""
    world = fake.world
    minor = fake.server_version.minor
    general = (req.param("idScheme") or "UID").upper()
    de_scheme = (req.param("dataElementIdScheme") or general).upper()
    ou_scheme = (req.param("orgUnitIdScheme") or general).upper()
    coc_scheme = (req.param("categoryOptionComboIdScheme") or general).upper()
    aoc_scheme = (req.param("attributeOptionComboIdScheme") or general).upper()
    with world.lock:
        data_sets = [d for d in req.params("dataSet") if d in world.data_sets]
        extra_des = (
            [d for d in req.params("dataElement") if d in world.data_elements]
            if minor >= 39
            else []
        )
        if not data_sets and not extra_des:
            return web_message(
                409, "At least one valid data set or data element group must be specified"
            )
        periods = req.params("period")
        start, end = req.param("startDate"), req.param("endDate")
        last_updated = req.param("lastUpdated")
        if not periods and not (start and end) and not last_updated:
            return web_message(
                409, "At least one valid period, start/end dates or last updated must be specified"
            )
        org_units = [o for o in req.params("orgUnit") if o in world.org_units]
        if not org_units:
            return web_message(
                409,
                "At least one valid organisation unit or organisation unit group must be specified",
            )
        children = req.flag("children")
        scope = {d for o in org_units for d in (world.descendants(o) if children else [o])}
        des = {de for d in data_sets for de in world.data_sets[d].data_elements} | set(extra_des)
        start_day = parse_when(fake, start).date() if start else None
        end_day = parse_when(fake, end).date() if end else None
        since = parse_when(fake, last_updated) if last_updated else None
        values: list[AggregateValue] = []
        for v in world.data_values.values():
            if v.data_element not in des or v.org_unit not in scope:
                continue
            if periods and v.period not in periods:
                continue
            if start_day and end_day:
                info = period_range(v.period)
                if info is None or info[1] < start_day or info[2] > end_day:
                    continue
            if since and v.last_updated < since:
                continue
            values.append(v)
        values.sort(key=lambda v: (v.period, v.org_unit, v.data_element))
        rendered: list[Json] = []
        for v in values:
            item: Json = {
                "dataElement": world.identify("data_elements", v.data_element, de_scheme),
                "period": v.period,
                "orgUnit": world.identify("org_units", v.org_unit, ou_scheme),
                "categoryOptionCombo": world.identify(
                    "category_option_combos", v.category_option_combo, coc_scheme
                ),
                "attributeOptionCombo": world.identify(
                    "category_option_combos", v.attribute_option_combo, aoc_scheme
                ),
                "value": v.value,
                "storedBy": v.stored_by,
                "created": fmt_time(v.created),
                "lastUpdated": fmt_time(v.last_updated),
            }
            if v.comment is not None:
                item["comment"] = v.comment
            item["followup"] = v.follow_up
            rendered.append(item)
        body: Json = {}
        if len(data_sets) == 1 and len(periods) == 1 and len(org_units) == 1 and not children:
            body["dataSet"] = data_sets[0]
            complete = world.complete_dates.get((data_sets[0], periods[0], org_units[0]))
            if complete is not None:
                body["completeDate"] = complete.isoformat()
            body["period"] = periods[0]
            body["orgUnit"] = world.identify("org_units", org_units[0], ou_scheme)
        body["dataValues"] = rendered
    return json_response(200, body)
