"""Import results: every DHIS2 shape normalises to one ImportSummary / TrackerImportReport.

Recorded bodies live in tests/cassettes/imports/<source>/ with SOURCE.md and the licence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2.imports import (
    ImportConflict,
    ImportSummary,
    TrackerImportMessage,
    job_location,
    merge_summaries,
    parse_import_summary,
    parse_legacy_event_summaries,
    parse_tracker_report,
)
from dhis2_lmis.errors import ResponseFormatError
from tests._fuzz import JSON, PROFILE, assert_only_dhis2_errors, mutated, paths

CASSETTES = Path(__file__).parent / "cassettes" / "imports"
BLSQ_DHIS2 = "BLSQ-dhis2/spec/fixtures"
IASO = "BLSQ-iaso/iaso/tests/fixtures/dhis2"
ANDROID = "dhis2-dhis2-android-sdk/core/src/sharedTest/resources"
TRACKER = f"{ANDROID}/imports/tracker-importer"
IMPORT_EXPORT = "dhis2-import-export-app/cypress/fixtures"


def load(relative: str) -> Any:
    return json.loads((CASSETTES / relative).read_text(encoding="utf-8"))


# --- data value sets: recorded bodies --------------------------------------------------------


@pytest.mark.parametrize("version", ["2.24", "2.28"])
def test_blsq_plain_summary_imported_one_value(version: str) -> None:
    exchange = load(f"{BLSQ_DHIS2}/{version}/create/data_value_sets.json")
    summary = parse_import_summary(
        exchange["response"], payload_values=exchange["request"]["dataValues"]
    )
    assert summary == ImportSummary(
        status="SUCCESS",
        imported=1,
        description="Import process completed successfully",
    )
    assert summary.ok
    assert summary.total == 1


def test_iaso_ok_summary_imported_three() -> None:
    summary = parse_import_summary(load(f"{IASO}/datavalues-ok.json"))
    assert (summary.status, summary.imported, summary.updated, summary.ignored) == (
        "SUCCESS",
        3,
        0,
        0,
    )
    assert summary.conflicts == ()


IASO_ROWS: list[JsonObject] = [
    {"dataElement": "M62VHgYT2n0", "period": "202001", "orgUnit": "ImspTQPwCqd", "value": "1"},
    {
        "dataElement": "M62VHgYT2n0",
        "categoryOptionCombo": "ba1FkzknqS8",
        "period": "203001",
        "orgUnit": "ImspTQPwCqd",
        "value": "2",
    },
    {"dataElement": "M62VHgY22n0", "period": "202001", "orgUnit": "ImspTQPwCqd", "value": "3"},
]


@pytest.mark.parametrize(
    ("name", "obj", "message", "row"),
    [
        (
            "datavalues-error-bad-coc.json",
            "ba1FkzknqS8",
            "Category option combo not found or not accessible",
            1,
        ),
        (
            "datavalues-error-open-periods.json",
            "203001",
            "Period: 203001 is after latest open future period: 202001 for data element: "
            "M62VHgYT2n0",
            1,
        ),
        (
            "datavalues-error-unknown-dataelement.json",
            "M62VHgY22n0",
            "Data element not found or not accessible",
            2,
        ),
    ],
)
def test_iaso_409_warning_maps_object_only_conflict_back_to_the_row(
    name: str, obj: str, message: str, row: int
) -> None:
    summary = parse_import_summary(load(f"{IASO}/{name}"), payload_values=IASO_ROWS)
    assert (summary.status, summary.imported, summary.ignored) == ("WARNING", 0, 1)
    assert summary.conflicts == (
        ImportConflict(object=obj, value=message, indexes=(row,), data_values=(IASO_ROWS[row],)),
    )
    assert not summary.ok


def test_object_only_conflict_without_payload_has_no_rows() -> None:
    summary = parse_import_summary(load(f"{IASO}/datavalues-error-bad-coc.json"))
    assert summary.conflicts[0].indexes == ()
    assert summary.conflicts[0].data_values == ()


def test_android_webmessage_success_updated_three() -> None:
    summary = parse_import_summary(load(f"{ANDROID}/datavalueset/data_value_set_success.json"))
    assert summary == ImportSummary(
        status="SUCCESS", updated=3, description="Import process completed successfully"
    )


def test_android_webmessage_warning_keeps_conflict_on_a_value() -> None:
    summary = parse_import_summary(load(f"{ANDROID}/datavalueset/data_value_set_warning.json"))
    assert (summary.status, summary.ignored, summary.total) == ("WARNING", 1, 1)
    assert summary.conflicts == (
        ImportConflict(
            object="40L",
            value="Data value is not a positive integer, must match data element type: vANAXwtLwcT",
        ),
    )


def test_async_task_summary_is_read_bare() -> None:
    summary = parse_import_summary(load(f"{IMPORT_EXPORT}/dataImportSummaries.json"))
    assert summary == ImportSummary(
        status="SUCCESS", description="Import process completed successfully"
    )


def test_async_acknowledgement_is_not_a_summary() -> None:
    with pytest.raises(ResponseFormatError, match="async job"):
        parse_import_summary(load(f"{IMPORT_EXPORT}/dataImportUpload.json"))


def test_legacy_event_summaries_are_not_a_data_value_summary() -> None:
    with pytest.raises(ResponseFormatError, match="parse_legacy_event_summaries"):
        parse_import_summary(load(f"{BLSQ_DHIS2}/2.28/create/events.json")["response"])


# --- data value sets: shapes from WEB_API.md §6 ---------------------------------------------

SUMMARY_238: JsonObject = {
    "httpStatus": "Conflict",
    "httpStatusCode": 409,
    "status": "WARNING",
    "message": "One more conflicts encountered, please check import summary.",
    "response": {
        "responseType": "ImportSummary",
        "status": "WARNING",
        "importOptions": {"dryRun": False},
        "description": "Import process completed successfully",
        "importCount": {"imported": 1, "updated": 0, "ignored": 1, "deleted": 0},
        "conflicts": [
            {
                "object": "XXXXXXXXXXX",
                "objects": {"dataElement": "XXXXXXXXXXX"},
                "value": "Data element not found or not accessible: `XXXXXXXXXXX`",
                "errorCode": "E7610",
                "property": "dataElement",
                "indexes": [1],
            }
        ],
        "rejectedIndexes": [1],
        "dataSetComplete": "false",
    },
}


def test_238_webmessage_conflict_keeps_code_property_indexes_and_rows() -> None:
    rows: list[JsonObject] = [
        {"dataElement": "AAAAAAAAAAA", "value": "1"},
        {"dataElement": "XXXXXXXXXXX", "value": "2"},
    ]
    summary = parse_import_summary(SUMMARY_238, payload_values=rows)
    assert (summary.status, summary.imported, summary.ignored) == ("WARNING", 1, 1)
    assert summary.rejected_indexes == (1,)
    assert summary.conflicts == (
        ImportConflict(
            object="XXXXXXXXXXX",
            value="Data element not found or not accessible: `XXXXXXXXXXX`",
            error_code="E7610",
            property="dataElement",
            indexes=(1,),
            data_values=(rows[1],),
        ),
    )


def test_aborted_import_is_error_with_description() -> None:
    body: JsonObject = {
        "httpStatus": "Conflict",
        "httpStatusCode": 409,
        "status": "ERROR",
        "response": {
            "responseType": "ImportSummary",
            "status": "ERROR",
            "description": "Import process was aborted",
            "importCount": {"imported": 0, "updated": 0, "ignored": 0, "deleted": 0},
            "conflicts": [
                {"object": "LmIsDsStck9", "value": "Data set not found", "errorCode": "E7600"}
            ],
        },
    }
    summary = parse_import_summary(body)
    assert summary.status == "ERROR"
    assert summary.description == "Import process was aborted"
    assert summary.conflicts[0].error_code == "E7600"
    assert "Import process was aborted" in str(summary)


def test_error_summary_without_counts_reads_as_zero() -> None:
    summary = parse_import_summary(
        {"responseType": "ImportSummary", "status": "ERROR", "description": "boom"}
    )
    assert (summary.status, summary.total) == ("ERROR", 0)


def test_oldest_servers_counts_at_top_level_are_read() -> None:
    body: JsonObject = {"status": "SUCCESS", "imported": 2, "updated": 1, "ignored": 0}
    summary = parse_import_summary(body)
    assert (summary.imported, summary.updated, summary.deleted) == (2, 1, 0)


def test_ok_status_is_normalised_to_success() -> None:
    summary = parse_import_summary({"status": "OK", "importCount": {"imported": 1}})
    assert summary.status == "SUCCESS"


def test_dry_run_is_taken_from_argument_or_import_options() -> None:
    body: JsonObject = {"status": "SUCCESS", "importCount": {"imported": 1}}
    assert parse_import_summary(body, dry_run=True).dry_run
    assert not parse_import_summary(body).dry_run
    with_options: JsonObject = {**body, "importOptions": {"dryRun": True}}
    assert parse_import_summary(with_options).dry_run


def test_conflict_object_matching_many_rows_attaches_them_all() -> None:
    rows: list[JsonObject] = [
        {"dataElement": "A", "period": "203001", "value": "1"},
        {"dataElement": "B", "period": "202001", "value": "2"},
        {"dataElement": "C", "period": "203001", "value": "3"},
    ]
    body: JsonObject = {
        "status": "WARNING",
        "importCount": {"imported": 1, "ignored": 2},
        "conflicts": [{"object": "203001", "value": "Period not open"}],
    }
    conflict = parse_import_summary(body, payload_values=rows).conflicts[0]
    assert conflict.indexes == (0, 2)
    assert conflict.data_values == (rows[0], rows[2])


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ([], "JSON object"),
        ("Import was successful.", "JSON object"),
        (None, "JSON object"),
        ({}, "no import summary"),
        ({"httpStatus": "Unauthorized", "message": "Bad credentials"}, "Bad credentials"),
        ({"importCount": {"imported": 1}}, "no status"),
        ({"status": "DONE", "importCount": {}}, "status"),
        ({"status": "SUCCESS", "conflicts": []}, "no importCount"),
        ({"status": "SUCCESS", "importCount": {"imported": "1"}}, "imported"),
        ({"status": "SUCCESS", "importCount": {"imported": True}}, "imported"),
        ({"status": "SUCCESS", "importCount": {"imported": -1}}, "imported"),
        ({"status": "SUCCESS", "importCount": []}, "importCount"),
        ({"status": "WARNING", "importCount": {}, "conflicts": {}}, "conflicts"),
        ({"status": "WARNING", "importCount": {}, "conflicts": ["x"]}, "conflicts[0]"),
        ({"status": "WARNING", "importCount": {}, "conflicts": [{"object": "x"}]}, "value"),
        (
            {
                "status": "WARNING",
                "importCount": {},
                "conflicts": [{"value": "v", "indexes": [-1]}],
            },
            "indexes",
        ),
        ({"status": "WARNING", "importCount": {}, "rejectedIndexes": "1"}, "rejectedIndexes"),
    ],
)
def test_unreadable_body_raises_response_format_error_naming_what_is_missing(
    body: JsonValue, missing: str
) -> None:
    with pytest.raises(ResponseFormatError, match=re.escape(missing)):
        parse_import_summary(body)


# --- merging chunk summaries -----------------------------------------------------------------


def _summary(status: str, imported: int, conflict_rows: tuple[int, ...] = ()) -> ImportSummary:
    conflicts = tuple(ImportConflict("X", "bad", "E7610", indexes=(i,)) for i in conflict_rows)
    return ImportSummary(
        status=status,  # type: ignore[arg-type]  # test helper takes plain strings
        imported=imported,
        ignored=len(conflict_rows),
        conflicts=conflicts,
        rejected_indexes=conflict_rows,
        description=f"{status} chunk",
    )


def test_merge_adds_counts_offsets_indexes_and_keeps_worst_status() -> None:
    merged = _summary("SUCCESS", 10).merge(_summary("WARNING", 8, (3,)), index_offset=10)
    assert (merged.status, merged.imported, merged.ignored) == ("WARNING", 18, 1)
    assert merged.conflicts[0].indexes == (13,)
    assert merged.rejected_indexes == (13,)
    assert merged.description == "WARNING chunk"


def test_merge_summaries_folds_chunks_with_their_offsets() -> None:
    merged = merge_summaries(
        [
            (_summary("WARNING", 9, (0,)), 0),
            (_summary("SUCCESS", 10), 10),
            (_summary("ERROR", 0, (2,)), 20),
        ]
    )
    assert merged.status == "ERROR"
    assert merged.imported == 19
    assert [c.indexes for c in merged.conflicts] == [(0,), (22,)]
    assert merged.rejected_indexes == (0, 22)


def test_merge_of_nothing_is_an_empty_success() -> None:
    assert merge_summaries([]) == ImportSummary(status="SUCCESS")


def test_str_reads_as_a_sentence_with_one_line_per_conflict() -> None:
    text = str(parse_import_summary(SUMMARY_238))
    assert text.startswith("WARNING: 1 imported, 0 updated, 1 ignored, 0 deleted; 1 conflict:")
    assert "E7610 dataElement XXXXXXXXXXX: Data element not found" in text
    assert "(rows 1)" in text


def test_repr_html_is_a_table_with_escaped_messages() -> None:
    summary = ImportSummary(
        status="WARNING", ignored=1, conflicts=(ImportConflict("<b>", "a < b & c"),)
    )
    html = summary._repr_html_()
    assert html.startswith("<table>")
    assert "a &lt; b &amp; c" in html
    assert "<b>" not in html


# --- tracker reports -------------------------------------------------------------------------


def test_tracker_event_conflict_e1029() -> None:
    report = parse_tracker_report(load(f"{TRACKER}/event-conflict-new.json"))
    assert (report.status, report.created, report.ignored, report.total) == ("ERROR", 0, 1, 1)
    assert report.errors == (
        TrackerImportMessage(
            error_code="E1029",
            message="Event OrganisationUnit: `OrganisationUnit (ABJTilhqOCW)`, and Program: "
            "`Program (q04UBOqq3rp)`, dont match.",
            tracker_type="EVENT",
            uid="STPIK5YTi4f",
        ),
    )
    assert not report.ok


def test_tracker_event_ok_with_bundle_report() -> None:
    report = parse_tracker_report(load(f"{TRACKER}/event-ok-new.json"))
    assert (report.status, report.created, report.updated, report.ignored) == ("OK", 1, 0, 0)
    assert report.errors == ()
    assert report.warnings == ()
    assert report.ok


def test_tracker_enrollment_error_e1041() -> None:
    report = parse_tracker_report(load(f"{TRACKER}/tei-with-enrollment-error-new.json"))
    assert (report.status, report.ignored, report.total) == ("ERROR", 2, 2)
    assert [(e.error_code, e.tracker_type, e.uid) for e in report.errors] == [
        ("E1041", "ENROLLMENT", "XJPm2lZzxtq")
    ]


def test_tracker_async_job_acknowledgement_is_not_a_report() -> None:
    with pytest.raises(ResponseFormatError, match="job_location"):
        parse_tracker_report(load(f"{TRACKER}/job_response.json"))


def test_tracker_report_reads_warnings_and_object_report_errors() -> None:
    body: JsonObject = {
        "status": "WARNING",
        "validationReport": {
            "errorReports": [],
            "warningReports": [
                {"message": "w", "errorCode": "E1308", "trackerType": "EVENT", "uid": "A"}
            ],
        },
        "bundleReport": {
            "stats": {"created": 1, "updated": 1, "deleted": 0, "ignored": 0},
            "typeReportMap": {
                "EVENT": {
                    "objectReports": [
                        {"uid": "B", "errorReports": [{"message": "m", "errorCode": "E1000"}]}
                    ]
                }
            },
        },
    }
    report = parse_tracker_report(body)
    assert (report.created, report.updated) == (1, 1)
    assert [w.error_code for w in report.warnings] == ["E1308"]
    assert [e.error_code for e in report.errors] == ["E1000"]


def test_tracker_catastrophic_message_becomes_an_error() -> None:
    body: JsonObject = {"status": "ERROR", "message": "boom", "stats": {"created": 0, "ignored": 0}}
    assert parse_tracker_report(body).errors == (TrackerImportMessage(None, "boom"),)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"status": "OK", "validationReport": {"errorReports": []}}, "no stats"),
        ({"stats": {}}, "no status"),
        ({"status": "OK", "stats": {}, "validationReport": []}, "validationReport"),
        ({"status": "OK", "stats": {}, "validationReport": {"errorReports": [{}]}}, "message"),
        ({"message": "Not found"}, "Not found"),
    ],
)
def test_unreadable_tracker_report_raises_response_format_error(
    body: JsonValue, missing: str
) -> None:
    with pytest.raises(ResponseFormatError, match=missing):
        parse_tracker_report(body)


# --- legacy /api/events ----------------------------------------------------------------------


def test_legacy_events_blsq_228_created_one() -> None:
    report = parse_legacy_event_summaries(load(f"{BLSQ_DHIS2}/2.28/create/events.json")["response"])
    assert (report.status, report.created, report.ignored, report.errors) == ("OK", 1, 0, ())


def test_legacy_events_iaso_ok_created_one() -> None:
    report = parse_legacy_event_summaries(load(f"{IASO}/event-create-ok.json"))
    assert (report.status, report.created, report.total) == ("OK", 1, 1)


def test_legacy_events_233_description_errors_keep_references() -> None:
    body = load(f"{IASO}/event-create-error-233.json")
    report = parse_legacy_event_summaries(body)
    assert (report.status, report.created, report.ignored) == ("ERROR", 0, 53)
    assert len(report.errors) == 53
    assert report.errors[0] == TrackerImportMessage(
        None,
        "Event.orgUnit does not point to a valid organisation unit: kPxpcEPkYsA",
        "EVENT",
        "ocuCG01OkkK",
    )
    references = [s["reference"] for s in body["response"]["importSummaries"]]
    assert [e.uid for e in report.errors] == references


def test_legacy_events_235_conflict_becomes_error_naming_the_object() -> None:
    report = parse_legacy_event_summaries(load(f"{IASO}/event-create-error-235-type.json"))
    assert (report.status, report.ignored) == ("ERROR", 1)
    assert report.errors == (
        TrackerImportMessage(
            None, "DkhbIf6Xm9X: value_not_positive_integer", "EVENT", "sTe5QHwLPd3"
        ),
    )


def test_legacy_events_reject_a_data_value_summary_without_counts() -> None:
    with pytest.raises(ResponseFormatError):
        parse_legacy_event_summaries({"status": "OK", "message": "Tracker job added"})


# --- async job locations ---------------------------------------------------------------------


def test_job_location_tracker_job() -> None:
    assert job_location(load(f"{TRACKER}/job_response.json")) == "/api/tracker/jobs/LkXBUdIgbe3"


def test_job_location_241_tracker_job_without_response_type() -> None:
    body: JsonObject = {"response": {"id": "Abc", "location": "https://x.org/api/tracker/jobs/Abc"}}
    assert job_location(body) == "/api/tracker/jobs/Abc"


def test_job_location_data_value_import() -> None:
    body = load(f"{IMPORT_EXPORT}/dataImportUpload.json")
    assert job_location(body) == "/api/system/tasks/DATAVALUE_IMPORT/VSvRqiTbZFw"


def test_job_location_rebuilt_from_job_type_and_id() -> None:
    body: JsonObject = {"response": {"id": "YR1", "jobType": "DATAVALUE_IMPORT"}}
    assert job_location(body) == "/api/system/tasks/DATAVALUE_IMPORT/YR1"


@pytest.mark.parametrize(
    "name",
    [f"{IASO}/datavalues-ok.json", f"{TRACKER}/event-ok-new.json", f"{IASO}/event-create-ok.json"],
)
def test_job_location_is_none_for_finished_imports(name: str) -> None:
    assert job_location(load(name)) is None


# --- robustness: mutated fixtures and arbitrary JSON -----------------------------------------

ALL_FIXTURES = sorted(str(p.relative_to(CASSETTES)) for p in CASSETTES.rglob("*.json"))
ODD_VALUES: list[JsonValue] = [None, True, -1, 1.5, "x", [], {}, [None], {"a": None}]
PARSERS = [parse_import_summary, parse_tracker_report, parse_legacy_event_summaries, job_location]


def _call_each_parser(body: JsonValue) -> None:
    for parser in PARSERS:
        assert_only_dhis2_errors(parser.__name__, parser, body)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_mutated_fixture_raises_nothing_but_dhis2_errors(name: str) -> None:
    original = load(name)
    for path in paths(original, width=3):
        for odd in ODD_VALUES:
            _call_each_parser(mutated(original, path, "replace", odd))


@PROFILE
@given(JSON)
def test_arbitrary_json_raises_nothing_but_dhis2_errors(body: JsonValue) -> None:
    _call_each_parser(body)
