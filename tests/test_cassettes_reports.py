"""Stock reports read from real ``GET /api/dataValueSets`` answers of DHIS2 2.28-2.41.

The cassettes (tests/cassettes/datavaluesets/, sources in SOURCE.md) were recorded by other
clients, so their queries differ from the reader's in two harmless ways: the recorders sent
``children=False`` and no id schemes (the default, UID, which the reader asks for explicitly).
``report_query`` matches on everything else. Two recordings asked with ``startDate``/``endDate``,
which the reader never sends (it enumerates periods); those are fetched with the recorded query
and read with :meth:`StockReportReader.reports_of`, which is the same conversion.

Expected values come from the recorded JSON, parsed here independently of the library.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from vcr.cassette import Cassette

from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.lmis.models import Item, StockReport
from dhis2_lmis.lmis.references import ItemResolver
from dhis2_lmis.lmis.reports import StockReportReader
from tests._cassettes import CASSETTES, base_url, make_vcr, recorded_bodies

_IGNORED = {
    ("children", "False"),
    ("dataElementIdScheme", "UID"),
    ("orgUnitIdScheme", "UID"),
    ("categoryOptionComboIdScheme", "UID"),
}


def _pairs(uri: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(urlsplit(uri).query, keep_blank_values=True)
    return sorted(p for p in pairs if p not in _IGNORED)


def report_query(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal queries once the recorders' ``children=False`` and the reader's
    explicit UID id schemes (both DHIS2 defaults) are set aside."""
    left, right = _pairs(r1.uri), _pairs(r2.uri)
    if left != right:
        raise AssertionError(f"query {left} != {right}")


@contextlib.contextmanager
def replay(name: str) -> Iterator[Cassette]:
    """Play one cassette with ``report_query``, every real connection refused."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network blocked: the cassette tests may only talk to vcrpy")

    recorder = make_vcr()
    recorder.register_matcher("report_query", report_query)
    with (
        mock.patch.object(socket.socket, "connect", refuse),
        mock.patch.object(socket.socket, "connect_ex", refuse),
        recorder.use_cassette(
            str(CASSETTES / name),
            allow_playback_repeats=False,
            match_on=("method", "scheme", "host", "port", "path", "report_query"),
        ) as cassette,
    ):
        yield cassette


def reader(name: str, data_set: str, **options: Any) -> StockReportReader:
    session = Dhis2Session(base_url(name), None)
    return StockReportReader(
        session,
        data_set=data_set,
        period_format="YYYYMM",
        data_element_id_scheme="UID",
        time_zone=None,  # the cassettes hold no /api/system/info
        **options,
    )


def recorded_values(name: str) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = []
    for _, body in recorded_bodies(name):
        values.extend(json.loads(body).get("dataValues", []))
    return values


def check_against_recording(name: str, reports: list[StockReport]) -> None:
    """Every recorded value is on exactly one line of the report of its (org unit, period)."""
    values = recorded_values(name)
    assert Counter((r.org_unit, r.period) for r in reports) == Counter(
        dict.fromkeys({(v["orgUnit"], v["period"]) for v in values}, 1)
    )
    got = Counter(
        (r.org_unit, r.period, line.data_element, line.category_option_combo, line.raw_value)
        for r in reports
        for line in r.lines
    )
    want = Counter(
        (v["orgUnit"], v["period"], v["dataElement"], v["categoryOptionCombo"], v["value"])
        for v in values
    )
    assert got == want
    for report in reports:
        assert not report.problems, report.problems
        for line in report.lines:
            assert line.value == Decimal(line.raw_value or "nan")
            assert line.updated_at is not None
            assert line.updated_at.utcoffset() == dt.timedelta(0)  # "+0000" kept


def test_reads_the_2_28_answer_with_top_level_period_and_org_unit() -> None:
    name = "datavaluesets/blsq-dhis2_2.28_data_value_sets.yaml"
    items = ItemResolver(
        [Item("I-1", "Recorded item", universal_code="FTRrcoaog83")], id_scheme="UID"
    )
    with replay(name) as cassette:
        reports = list(reader(name, "sNgO1RMIhXz", items=items).read("201601", "Rp268JB6Ne4"))
        assert cassette.all_played

    check_against_recording(name, reports)
    (report,) = reports
    (line,) = report.lines
    assert (report.org_unit, report.period, line.value) == ("Rp268JB6Ne4", "201601", Decimal(36))
    assert line.item is not None and line.item.code == "I-1"
    assert line.updated_at == dt.datetime(2017, 10, 24, 13, 57, 6, tzinfo=dt.timezone.utc)
    assert report.complete_date is None  # 2.28 sent no completeDate


def test_reads_the_2_41_answers_with_complete_dates_one_request_per_period() -> None:
    name = "datavaluesets/openhexa_2.41_get_dataset.yaml"
    with replay(name) as cassette:
        reports = list(
            reader(name, "BfMAe6Itzgt").read(
                (dt.date(2023, 6, 1), dt.date(2023, 8, 31)), "uNEhNuBUr0i"
            )
        )
        assert cassette.all_played

    check_against_recording(name, reports)
    assert [(r.period, r.complete_date) for r in reports] == [
        ("202306", dt.date(2010, 7, 23)),
        ("202307", dt.date(2010, 8, 12)),
        ("202308", dt.date(2010, 8, 31)),
    ]


def test_reads_the_2_40_bare_answers_of_two_org_unit_batches_and_two_periods() -> None:
    name = "datavaluesets/openhexa_2.40_get_period.yaml"
    org_units = [
        *("JQr6TJx5KE3", "KbO0JnhiMwl", "f90eISKFm7P", "HNv1aLPdMYb", "hHKKi9WNoBG"),
        *("kpDoH80fwdX", "sFgNRYS5pBo", "vELbGdEphPd", "OTn9VMNEkdo", "jKZ0U8Og5aV"),
    ]
    with replay(name) as cassette:
        stock = reader(name, "QX4ZTUbOt3a", batch_size=6)
        reports = list(stock.read((dt.date(2022, 1, 1), dt.date(2022, 2, 28)), org_units))
        assert cassette.play_count == 4 and cassette.all_played

    check_against_recording(name, reports)
    assert all(r.complete_date is None for r in reports)  # several org units: no header


@pytest.mark.parametrize(
    "name",
    [
        "datavaluesets/openhexa_2.36_get_start_end.yaml",
        "datavaluesets/openhexa_2.37_get_start_end.yaml",
    ],
)
def test_reads_date_range_answers_fetched_with_the_recorded_query(name: str) -> None:
    data_set = "BfMAe6Itzgt" if "2.36" in name else "QX4ZTUbOt3a"
    reports: list[StockReport] = []
    with replay(name) as cassette:
        stock = reader(name, data_set)
        for uri, _ in recorded_bodies(name):
            query = parse_qsl(urlsplit(uri).query)
            params: dict[str, list[str]] = {}
            for key, value in query:
                params.setdefault(key, []).append(value)
            body = stock.session.get_json("dataValueSets", params)
            reports.extend(stock.reports_of(body))
        assert cassette.all_played

    check_against_recording(name, reports)
    assert len({r.period for r in reports}) > 1  # a range answer spans periods
