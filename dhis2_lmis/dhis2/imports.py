"""One normalised import result for every shape DHIS2 has answered an import with.

DHIS2 has reported imports in at least six shapes between 2.24 and 2.42:

* ``/api/dataValueSets`` up to 2.37: a bare ``ImportSummary`` (HTTP 200 even with conflicts);
  2.36 conflicts are ``{object, value}``, 2.37+ add ``errorCode``, ``property``, ``indexes``;
* ``/api/dataValueSets`` from 2.38: the same summary inside a WebMessage's ``response``, with
  HTTP 409 for WARNING as well as ERROR (so the status code says nothing about what was saved);
* async task summaries (``/api/system/taskSummaries/DATAVALUE_IMPORT/{id}``): bare again;
* ``POST /api/tracker`` (sync): an import report with ``stats`` and ``validationReport``;
* legacy ``POST /api/events``: a WebMessage wrapping ``ImportSummaries``, one per event;
* async job acknowledgements for both, which carry only where to poll.

Callers get :class:`ImportSummary` (aggregate) or :class:`TrackerImportReport` (events) and never
see the dialect. Every parser here raises only :class:`~dhis2_lmis.errors.ResponseFormatError`
on a body it cannot read, whatever JSON it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import attrs

from dhis2_lmis.dhis2 import _html
from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2.datavaluesets import (
    ATTRIBUTE_OPTION_COMBO,
    CATEGORY_OPTION_COMBO,
    DATA_ELEMENT,
    ORG_UNIT,
    PERIOD,
)
from dhis2_lmis.errors import Dhis2Error, ResponseFormatError

__all__ = [
    "ImportConflict",
    "ImportStatus",
    "ImportSummary",
    "TrackerImportMessage",
    "TrackerImportReport",
    "TrackerStatus",
    "job_location",
    "merge_summaries",
    "parse_import_summary",
    "parse_legacy_event_summaries",
    "parse_tracker_report",
]

log = logging.getLogger(__name__)


class ImportFailedError(Dhis2Error):
    """An import was aborted by DHIS2 (status ERROR); ``summary`` holds the normalised result."""

    def __init__(
        self,
        message: str,
        *,
        summary: ImportSummary,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        self.summary = summary
        super().__init__(message, method=method, path=path, status=status)


ImportStatus = Literal["SUCCESS", "WARNING", "ERROR"]
TrackerStatus = Literal["OK", "WARNING", "ERROR"]

_SEVERITY: dict[str, int] = {"SUCCESS": 0, "OK": 0, "WARNING": 1, "ERROR": 2}
_COUNT_KEYS = ("imported", "updated", "ignored", "deleted")
# Keys of a data value row a 2.36 conflict ``object`` may name.
_ROW_KEYS = (DATA_ELEMENT, ORG_UNIT, PERIOD, CATEGORY_OPTION_COMBO, ATTRIBUTE_OPTION_COMBO)


@attrs.frozen
class ImportConflict:
    """One value (or group of values) DHIS2 refused, with the caller's rows it refers to.

    Attributes:
        object: what DHIS2 blamed: a UID, a period id or, for type errors, the value itself.
        value: DHIS2's message (the field is called ``value`` on the wire).
        error_code: ``E76xx`` code; 2.37+ only.
        property: the payload field at fault (``dataElement``, ``period``...); 2.37+ only.
        indexes: 0-based positions in the pushed ``dataValues``. Sent by 2.37+; for 2.36 they
            are inferred by matching ``object`` against the rows' identifiers.
        data_values: the caller's rows at ``indexes``, so the conflict maps back to the input.
        rows: the caller's names for those rows (``values.csv:7``, ``row 3``), as
            :func:`~dhis2_lmis.lmis.datavalues.push_data_value_set` knows them; messages use them.
    """

    object: str | None
    value: str
    error_code: str | None = None
    property: str | None = None
    indexes: tuple[int, ...] = ()
    data_values: tuple[JsonObject, ...] = ()
    rows: tuple[str, ...] = ()

    def __str__(self) -> str:
        head = " ".join(p for p in (self.error_code, self.property, self.object) if p)
        text = f"{head}: {self.value}" if head else self.value
        if self.rows or self.indexes:
            text += f" ({_rows_text(self)})"
        return text

    def shifted(self, offset: int) -> ImportConflict:
        """Return this conflict with ``indexes`` moved by ``offset`` (for chunked pushes)."""
        if not offset or not self.indexes:
            return self
        return attrs.evolve(self, indexes=tuple(i + offset for i in self.indexes))


def _rows_text(conflict: ImportConflict) -> str:
    """The rows of a conflict as the caller names them, else as push positions."""
    if conflict.rows:
        return ", ".join(conflict.rows)
    return "rows " + ", ".join(map(str, conflict.indexes)) if conflict.indexes else ""


@attrs.frozen
class ImportSummary:
    """The normalised result of a data value import, whichever DHIS2 version answered.

    ``status`` WARNING means *some values were saved*: read the counts, never assume a 409 meant
    nothing happened. ``ok`` is the one-line answer to "did everything land?".
    """

    status: ImportStatus
    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0
    conflicts: tuple[ImportConflict, ...] = ()
    rejected_indexes: tuple[int, ...] = ()
    description: str | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was refused: no conflicts and not aborted."""
        return not self.conflicts and self.status != "ERROR"

    @property
    def total(self) -> int:
        """Number of values DHIS2 accounted for (imported + updated + ignored + deleted)."""
        return self.imported + self.updated + self.ignored + self.deleted

    def merge(self, other: ImportSummary, index_offset: int = 0) -> ImportSummary:
        """Combine with the summary of a later chunk.

        Args:
            other: the later chunk's summary.
            index_offset: position of ``other``'s first value in the whole push; its conflict
                indexes and rejected indexes are moved by this much.

        Returns:
            Counts added, conflicts concatenated, the worse status, and the description of the
            worse summary (the earlier one on a tie).
        """
        worse = other if _SEVERITY[other.status] > _SEVERITY[self.status] else self
        return ImportSummary(
            status=worse.status,
            imported=self.imported + other.imported,
            updated=self.updated + other.updated,
            ignored=self.ignored + other.ignored,
            deleted=self.deleted + other.deleted,
            conflicts=self.conflicts + tuple(c.shifted(index_offset) for c in other.conflicts),
            rejected_indexes=self.rejected_indexes
            + tuple(i + index_offset for i in other.rejected_indexes),
            description=worse.description or self.description or other.description,
            dry_run=self.dry_run or other.dry_run,
        )

    def __str__(self) -> str:
        text = (
            f"{self.status}{' (dry run)' if self.dry_run else ''}: {self.imported} imported, "
            f"{self.updated} updated, {self.ignored} ignored, {self.deleted} deleted"
        )
        if self.description and self.status == "ERROR":
            text += f" - {self.description}"
        if self.conflicts:
            n = len(self.conflicts)
            text += f"; {n} conflict{'s' if n != 1 else ''}:"
            text += "".join(f"\n  - {c}" for c in self.conflicts)
        return text

    def __repr__(self) -> str:
        n = len(self.conflicts)
        return (
            f"<ImportSummary {self.status}{' dry run' if self.dry_run else ''} "
            f"imported={self.imported} updated={self.updated} ignored={self.ignored} "
            f"deleted={self.deleted} conflicts={n}>"
        )

    def _repr_html_(self) -> str:
        status = self.status + (" (dry run)" if self.dry_run else "")
        counts = (self.imported, self.updated, self.ignored, self.deleted)
        text = _html.table(
            ("status", "imported", "updated", "ignored", "deleted"), [(status, *counts)]
        )
        if self.conflicts:
            text += _html.table(
                ("error code", "property", "object", "message", "rows"),
                (
                    (c.error_code, c.property, c.object, c.value, _rows_text(c))
                    for c in self.conflicts
                ),
            )
        return text


def merge_summaries(summaries_with_offsets: Iterable[tuple[ImportSummary, int]]) -> ImportSummary:
    """Fold chunk summaries, each with the index of its chunk's first value, into one.

    An empty input gives an empty SUCCESS summary (nothing was pushed, nothing failed).
    """
    merged = ImportSummary(status="SUCCESS")
    for summary, offset in summaries_with_offsets:
        merged = merged.merge(summary, offset)
    return merged


# --------------------------------------------------------------------------- helpers


def _fail(what: str) -> ResponseFormatError:
    return ResponseFormatError(f"not a DHIS2 import response: {what}")


def _kind(value: JsonValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _object(value: JsonValue, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _fail(f"{where} should be a JSON object, got {_kind(value)}")
    return value


def _opt_str(obj: Mapping[str, JsonValue], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _fail(f"{where}.{key} should be a string, got {_kind(value)}")


def _count(obj: Mapping[str, JsonValue], key: str, where: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(f"{where}.{key} should be a non-negative integer, got {value!r}")
    return value


def _list(obj: Mapping[str, JsonValue], key: str, where: str) -> list[JsonValue]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{where}.{key} should be a list, got {_kind(value)}")
    return value


def _indexes(obj: Mapping[str, JsonValue], key: str, where: str) -> tuple[int, ...]:
    out = []
    for item in _list(obj, key, where):
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise _fail(f"{where}.{key} should hold non-negative integers, got {item!r}")
        out.append(item)
    return tuple(out)


def _unwrap(
    body: JsonValue, inner_keys: Sequence[str], response_types: Sequence[str], what: str
) -> JsonObject:
    """Return the object carrying the report: ``body`` itself, or a WebMessage's ``response``."""
    obj = _object(body, "the response body")
    if any(k in obj for k in inner_keys) or obj.get("responseType") in response_types:
        return obj
    inner = obj.get("response")
    if isinstance(inner, dict):
        if _is_job(inner):
            raise _fail(
                f"this acknowledges an async job ({what} was queued, not done); poll the job "
                "found by job_location() and parse its report"
            )
        return inner
    message = obj.get("message")
    detail = f" (DHIS2 says: {message})" if isinstance(message, str) else ""
    keys = ", ".join(sorted(obj)[:8]) or "none"
    raise _fail(f"no {what} found: expected {' or '.join(inner_keys)}; keys: {keys}{detail}")


def _is_job(obj: Mapping[str, JsonValue]) -> bool:
    return (
        "relativeNotifierEndpoint" in obj
        or "jobType" in obj
        or obj.get("responseType") == "TrackerJob"
        or (isinstance(obj.get("location"), str) and "/jobs/" in str(obj.get("location")))
    )


# --------------------------------------------------------------------------- data value sets


def _status(obj: Mapping[str, JsonValue], where: str) -> ImportStatus:
    raw = obj.get("status")
    if raw in ("SUCCESS", "OK"):
        return "SUCCESS"
    if raw == "WARNING":
        return "WARNING"
    if raw == "ERROR":
        return "ERROR"
    if raw is None:
        raise _fail(f"{where} has no status")
    raise _fail(f"{where}.status should be SUCCESS, OK, WARNING or ERROR, got {raw!r}")


def _summary_counts(obj: Mapping[str, JsonValue], status: str, where: str) -> dict[str, int]:
    count_obj = obj.get("importCount")
    if count_obj is not None:
        counts = _object(count_obj, f"{where}.importCount")
        return {k: _count(counts, k, f"{where}.importCount") for k in _COUNT_KEYS}
    if any(k in obj for k in _COUNT_KEYS):  # pre-importCount servers put them at top level
        return {k: _count(obj, k, where) for k in _COUNT_KEYS}
    if status == "ERROR":  # an aborted import may carry no counts at all
        return dict.fromkeys(_COUNT_KEYS, 0)
    raise _fail(f"{where} has no importCount")


def _rows_for(
    object_: str | None,
    indexes: tuple[int, ...],
    payload_values: Sequence[JsonObject],
) -> tuple[tuple[int, ...], tuple[JsonObject, ...]]:
    if indexes:
        rows = tuple(payload_values[i] for i in indexes if i < len(payload_values))
        return indexes, rows
    if object_ is None or not payload_values:
        return (), ()
    matched = tuple(
        i
        for i, row in enumerate(payload_values)
        if isinstance(row, dict) and any(row.get(k) == object_ for k in _ROW_KEYS)
    )
    return matched, tuple(payload_values[i] for i in matched)


def _conflict(raw: JsonValue, where: str, payload_values: Sequence[JsonObject]) -> ImportConflict:
    obj = _object(raw, where)
    message = _opt_str(obj, "value", where)
    if message is None:
        message = _opt_str(obj, "message", where)  # seen in some error reports
    if message is None:
        raise _fail(f"{where} has no value (message)")
    object_ = _opt_str(obj, "object", where)
    indexes, rows = _rows_for(object_, _indexes(obj, "indexes", where), payload_values)
    return ImportConflict(
        object=object_,
        value=message,
        error_code=_opt_str(obj, "errorCode", where),
        property=_opt_str(obj, "property", where),
        indexes=indexes,
        data_values=rows,
    )


def parse_import_summary(
    body: JsonValue,
    *,
    payload_values: Sequence[JsonObject] = (),
    dry_run: bool = False,
) -> ImportSummary:
    """Normalise a data value import response from any DHIS2 version.

    Reads the bare ImportSummary of 2.24-2.37 (``importCount``, or the counts at top level on
    the oldest servers), the WebMessage envelope of 2.38+ (the summary is its ``response``; the
    HTTP status is irrelevant), and async task summaries (bare). ``OK`` becomes ``SUCCESS``.

    Args:
        body: the parsed JSON body.
        payload_values: the ``dataValues`` rows that were sent, so conflicts can name them. 2.37+
            conflicts carry ``indexes``; for 2.36 conflicts (``object`` and ``value`` only) rows
            whose dataElement, orgUnit, period or option combos equal ``object`` are attached and
            their positions become the conflict's ``indexes``.
        dry_run: mark the summary as a dry run (also set when ``importOptions.dryRun`` is true).

    Returns:
        The normalised summary.

    Raises:
        ResponseFormatError: the body is none of these shapes (including an async job
            acknowledgement, which holds no result yet); the message names what was missing.
    """
    obj = _unwrap(
        body, ("importCount", "conflicts", "imported"), ("ImportSummary",), "import summary"
    )
    where = "response" if obj is not body else "summary"
    if obj.get("responseType") == "ImportSummaries" or "importSummaries" in obj:
        raise _fail(
            "this is an ImportSummaries list (legacy events); use parse_legacy_event_summaries"
        )
    status = _status(obj, where)
    counts = _summary_counts(obj, status, where)
    conflicts = tuple(
        _conflict(raw, f"{where}.conflicts[{i}]", payload_values)
        for i, raw in enumerate(_list(obj, "conflicts", where))
    )
    options = obj.get("importOptions")
    server_dry_run = isinstance(options, dict) and options.get("dryRun") is True
    return ImportSummary(
        status=status,
        conflicts=conflicts,
        rejected_indexes=_indexes(obj, "rejectedIndexes", where),
        description=_opt_str(obj, "description", where),
        dry_run=dry_run or server_dry_run,
        **counts,
    )


# --------------------------------------------------------------------------- tracker


@attrs.frozen
class TrackerImportMessage:
    """One error or warning from a tracker (or legacy event) import.

    Attributes:
        error_code: ``E1xxx`` validation code, or the legacy conflict's code when it had one.
        message: DHIS2's explanation.
        tracker_type: ``EVENT``, ``ENROLLMENT``, ``TRACKED_ENTITY`` or ``RELATIONSHIP``.
        uid: the object's UID (the legacy summary's ``reference``).
    """

    error_code: str | None
    message: str
    tracker_type: str | None = None
    uid: str | None = None

    def __str__(self) -> str:
        head = " ".join(p for p in (self.error_code, self.tracker_type, self.uid) if p)
        return f"{head}: {self.message}" if head else self.message


@attrs.frozen
class TrackerImportReport:
    """The normalised result of an event import (``/api/tracker`` or legacy ``/api/events``).

    ``status`` ERROR with ``atomicMode=OBJECT`` still means valid objects were saved: read the
    counts. Legacy ``imported`` is reported as ``created``.
    """

    status: TrackerStatus
    created: int = 0
    updated: int = 0
    deleted: int = 0
    ignored: int = 0
    errors: tuple[TrackerImportMessage, ...] = ()
    warnings: tuple[TrackerImportMessage, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not self.errors and self.status != "ERROR"

    @property
    def total(self) -> int:
        """Objects DHIS2 accounted for."""
        return self.created + self.updated + self.deleted + self.ignored

    def __str__(self) -> str:
        text = (
            f"{self.status}: {self.created} created, {self.updated} updated, "
            f"{self.deleted} deleted, {self.ignored} ignored"
        )
        if self.errors:
            text += f"; {len(self.errors)} error{'s' if len(self.errors) != 1 else ''}:"
            text += "".join(f"\n  - {e}" for e in self.errors)
        return text


def _tracker_status(obj: Mapping[str, JsonValue], where: str) -> TrackerStatus:
    """The same status words as :func:`_status`, spelled as tracker reports spell success."""
    status = _status(obj, where)
    return "OK" if status == "SUCCESS" else status


def _tracker_error(raw: JsonValue, where: str) -> TrackerImportMessage:
    obj = _object(raw, where)
    message = _opt_str(obj, "message", where) or _opt_str(obj, "errorMessage", where)
    code = _opt_str(obj, "errorCode", where)
    if message is None and code is None:
        raise _fail(f"{where} has neither message nor errorCode")
    return TrackerImportMessage(
        error_code=code,
        message=message or "",
        tracker_type=_opt_str(obj, "trackerType", where),
        uid=_opt_str(obj, "uid", where) or _opt_str(obj, "mainId", where),
    )


def _stats(obj: Mapping[str, JsonValue], where: str) -> dict[str, int] | None:
    stats = obj.get("stats")
    if stats is None:
        return None
    stats_obj = _object(stats, f"{where}.stats")
    return {
        k: _count(stats_obj, k, f"{where}.stats")
        for k in ("created", "updated", "deleted", "ignored")
    }


def parse_tracker_report(body: JsonValue) -> TrackerImportReport:
    """Normalise a synchronous ``POST /api/tracker`` import report (2.36-2.42).

    Reads ``stats`` (top level, else ``bundleReport.stats``), ``validationReport`` errors and
    warnings (``trackerValidationReport`` on early 2.36 builds), and errors inside
    ``bundleReport.typeReportMap.*.objectReports``. A report wrapped in a WebMessage
    ``response`` is unwrapped. A catastrophic failure's top-level ``message`` becomes an error.

    Raises:
        ResponseFormatError: the body is not an import report (an async job acknowledgement
            included; use :func:`job_location`).
    """
    obj = _unwrap(
        body,
        ("stats", "validationReport", "trackerValidationReport", "bundleReport"),
        ("ImportReport", "TrackerImportReport"),
        "tracker import report",
    )
    where = "report"
    status = _tracker_status(obj, where)
    validation_raw = obj.get("validationReport", obj.get("trackerValidationReport"))
    errors: list[TrackerImportMessage] = []
    warnings: list[TrackerImportMessage] = []
    if validation_raw is not None:
        validation = _object(validation_raw, f"{where}.validationReport")
        vwhere = f"{where}.validationReport"
        errors += [
            _tracker_error(r, f"{vwhere}.errorReports[{i}]")
            for i, r in enumerate(_list(validation, "errorReports", vwhere))
        ]
        warnings += [
            _tracker_error(r, f"{vwhere}.warningReports[{i}]")
            for i, r in enumerate(_list(validation, "warningReports", vwhere))
        ]
    counts = _stats(obj, where)
    bundle_raw = obj.get("bundleReport")
    if bundle_raw is not None:
        bundle = _object(bundle_raw, f"{where}.bundleReport")
        if counts is None:
            counts = _stats(bundle, f"{where}.bundleReport")
        type_map_raw = bundle.get("typeReportMap")
        type_map: JsonObject = {}
        if type_map_raw is not None:
            type_map = _object(type_map_raw, f"{where}.bundleReport.typeReportMap")
        for name, type_raw in type_map.items():
            twhere = f"{where}.bundleReport.typeReportMap.{name}"
            type_report = _object(type_raw, twhere)
            for i, report_raw in enumerate(_list(type_report, "objectReports", twhere)):
                owhere = f"{twhere}.objectReports[{i}]"
                report = _object(report_raw, owhere)
                for j, err in enumerate(_list(report, "errorReports", owhere)):
                    error = _tracker_error(err, f"{owhere}.errorReports[{j}]")
                    if error not in errors:
                        errors.append(error)
    if counts is None:
        raise _fail(f"{where} has no stats")
    message = _opt_str(obj, "message", where)
    if status == "ERROR" and not errors and message:
        errors.append(TrackerImportMessage(error_code=None, message=message))
    return TrackerImportReport(
        status=status, errors=tuple(errors), warnings=tuple(warnings), **counts
    )


def parse_legacy_event_summaries(body: JsonValue) -> TrackerImportReport:
    """Normalise a legacy ``POST /api/events`` response (2.24-2.41) into a tracker report.

    The WebMessage's ``response`` (or a bare async task summary) is an ``ImportSummaries`` with
    one ``ImportSummary`` per event; a lone ``ImportSummary`` is read as a list of one. Each
    summary's ``reference`` becomes the ``uid``; its conflicts become errors (warnings when that
    summary's status is WARNING); a failed summary without conflicts contributes its
    ``description``. ``imported`` is reported as ``created``.

    Raises:
        ResponseFormatError: the body is not an ImportSummaries / ImportSummary.
    """
    obj = _unwrap(
        body,
        ("importSummaries", "importCount"),
        ("ImportSummaries", "ImportSummary"),
        "event import summaries",
    )
    where = "response" if obj is not body else "summaries"
    status = _tracker_status(obj, where)
    if "importSummaries" in obj:
        summaries = [
            _object(s, f"{where}.importSummaries[{i}]")
            for i, s in enumerate(_list(obj, "importSummaries", where))
        ]
    elif "importCount" in obj:
        summaries = [obj]
    else:
        raise _fail(f"{where} has no importSummaries")
    errors: list[TrackerImportMessage] = []
    warnings: list[TrackerImportMessage] = []
    totals = dict.fromkeys(_COUNT_KEYS, 0)
    for i, summary in enumerate(summaries):
        swhere = f"{where}.importSummaries[{i}]" if summary is not obj else where
        sstatus = _tracker_status(summary, swhere)
        for key, value in _summary_counts(summary, sstatus, swhere).items():
            totals[key] += value
        uid = _opt_str(summary, "reference", swhere)
        found: list[TrackerImportMessage] = []
        for j, raw in enumerate(_list(summary, "conflicts", swhere)):
            conflict = _conflict(raw, f"{swhere}.conflicts[{j}]", ())
            text = f"{conflict.object}: {conflict.value}" if conflict.object else conflict.value
            found.append(TrackerImportMessage(conflict.error_code, text, "EVENT", uid))
        description = _opt_str(summary, "description", swhere)
        if not found and sstatus != "OK" and description:
            found.append(TrackerImportMessage(None, description, "EVENT", uid))
        (warnings if sstatus == "WARNING" else errors).extend(found)
    if summaries and summaries[0] is not obj and any(k in obj for k in _COUNT_KEYS):
        totals = {k: _count(obj, k, where) for k in _COUNT_KEYS}
    return TrackerImportReport(
        status=status,
        created=totals["imported"],
        updated=totals["updated"],
        deleted=totals["deleted"],
        ignored=totals["ignored"],
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- async jobs


def job_location(body: JsonValue) -> str | None:
    """Return where to poll an async import, or None when ``body`` is not a job acknowledgement.

    Tracker (``responseType`` ``TrackerJob``, or a 2.41+ ``response`` with ``id`` and a
    ``/tracker/jobs/`` location) gives ``/api/tracker/jobs/{id}``; data value sets give the
    ``relativeNotifierEndpoint`` (``/api/system/tasks/DATAVALUE_IMPORT/{id}``), rebuilt from
    ``jobType`` and ``id`` when absent. The server's absolute ``location`` is not used as is: it
    names the host DHIS2 thinks it has, which behind a proxy is often wrong. Never raises.
    """
    if not isinstance(body, dict):
        return None
    inner = body.get("response")
    if not isinstance(inner, dict):
        inner = body
    job_id = inner.get("id")
    job_id = job_id if isinstance(job_id, str) and job_id else None
    endpoint = inner.get("relativeNotifierEndpoint")
    if isinstance(endpoint, str) and endpoint:
        return endpoint
    location = inner.get("location")
    location = location if isinstance(location, str) else ""
    if inner.get("responseType") == "TrackerJob" or "/tracker/jobs/" in location:
        if job_id is None and "/tracker/jobs/" in location:
            job_id = location.rsplit("/tracker/jobs/", 1)[1].split("/", 1)[0].split("?", 1)[0]
        return f"/api/tracker/jobs/{job_id}" if job_id else None
    job_type = inner.get("jobType")
    if isinstance(job_type, str) and job_type and job_id:
        return f"/api/system/tasks/{job_type}/{job_id}"
    return None
