"""to_dataframe: one typed frame per record type, read from the demo FakeDhis2."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from dhis2_lmis import Dhis2Error, Dhis2Lmis, Event, ImportConflict, ImportSummary
from dhis2_lmis.dhis2.records import DataValue, RecordProblem
from dhis2_lmis.lmis.models import StockReport
from dhis2_lmis.run.demo import demo_config, demo_customers, demo_items, demo_stores
from dhis2_lmis.run.frames import MissingExtraError, to_dataframe
from dhis2_lmis.testing import DEMO, FakeDhis2

PERIOD = "202610"


@pytest.fixture
def fake() -> Iterator[FakeDhis2]:
    with FakeDhis2.demo() as server:
        for f, facility in enumerate(DEMO.facilities):
            for i, element in enumerate(DEMO.soh_data_elements):
                server.add_data_value(element, PERIOD, facility, 10 * f + i)
        yield server


@pytest.fixture
def lmis(fake: FakeDhis2) -> Iterator[Dhis2Lmis]:
    # COTRI480 is left out of the items, so its requisition lines carry a problem.
    items = demo_items()[:4]
    with Dhis2Lmis(
        demo_config(fake.url), items=items, stores=demo_stores(), customers=demo_customers()
    ) as client:
        yield client


def is_aware(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype)


# -- events ------------------------------------------------------------------------------------


def test_events_frame_has_one_row_per_data_value(lmis: Dhis2Lmis) -> None:
    events = list(lmis.pull("order"))
    frame = to_dataframe(events)
    assert len(frame) == sum(len(e.data_values) for e in events) == 20
    assert set(frame["event"]) == {e.uid for e in events}
    assert frame["value"].dtype == pd.StringDtype()
    assert frame["numeric_value"].dtype == pd.Float64Dtype()


def test_events_frame_timestamps_are_timezone_aware(lmis: Dhis2Lmis) -> None:
    frame = to_dataframe(lmis.pull("order"))
    for column in ("occurred_at", "created_at", "updated_at", "completed_at", "value_updated_at"):
        assert is_aware(frame[column]), column


def test_events_frame_keeps_the_server_time_zone(fake: FakeDhis2, lmis: Dhis2Lmis) -> None:
    fake.time_zone = "Africa/Nairobi"
    frame = to_dataframe(lmis.pull("order"))
    offsets = {ts.utcoffset() for ts in frame["updated_at"]}
    assert offsets == {dt.timedelta(hours=3)}


def test_events_frame_numeric_value_is_empty_for_text(lmis: Dhis2Lmis) -> None:
    frame = to_dataframe(lmis.pull("order"))
    comments = frame[frame["data_element"] == "ORDER_COMMENT"]
    assert len(comments) == 6
    assert comments["numeric_value"].isna().all()
    assert comments["value"].str.startswith("Monthly order").all()


def test_wide_events_frame_has_one_row_per_event_and_a_column_per_data_element(
    lmis: Dhis2Lmis,
) -> None:
    events = list(lmis.pull("order"))
    frame = to_dataframe(events, wide=True)
    assert len(frame) == len(events) == 8
    assert set(DEMO.item_codes) | {"ORDER_COMMENT"} <= set(frame.columns)
    assert frame["AMOX250"].dtype == pd.Float64Dtype()
    assert frame["ORDER_COMMENT"].dtype == pd.StringDtype()
    first = events[0]
    row = frame.set_index("event").loc[first.uid]
    assert row["AMOX250"] == float(first.value("AMOX250") or "nan")


def test_wide_events_frame_pivots_like_the_long_frame(lmis: Dhis2Lmis) -> None:
    events = list(lmis.pull("order"))
    long = to_dataframe(events)
    pivot = long.pivot_table(
        index="event", columns="data_element", values="numeric_value", aggfunc="sum"
    )
    wide = to_dataframe(events, wide=True).set_index("event")
    for code in DEMO.item_codes:
        assert pivot[code].sum() == wide[code].sum(), code


def test_event_without_data_values_still_has_a_row() -> None:
    frame = to_dataframe([Event("EvNoValues1", status="ACTIVE")])
    assert len(frame) == 1
    assert frame.loc[0, "event"] == "EvNoValues1"
    assert pd.isna(frame.loc[0, "data_element"])


def test_wide_data_element_named_like_an_event_column_keeps_both() -> None:
    event = Event("EvClash0001", status="COMPLETED", data_values=(DataValue("status", "7"),))
    frame = to_dataframe([event], wide=True)
    assert frame.loc[0, "status"] == "COMPLETED"
    assert frame.loc[0, "status (data element)"] == 7.0


# -- timestamps ----------------------------------------------------------------------------------


def test_naive_timestamps_stay_naive() -> None:
    when = dt.datetime(2026, 11, 2, 9, 0)
    frame = to_dataframe([Event("EvNaive0001", updated_at=when)])
    assert frame["updated_at"].dtype.kind == "M"
    assert not is_aware(frame["updated_at"])
    assert frame.loc[0, "updated_at"] == pd.Timestamp(when)


def test_mixed_naive_and_aware_timestamps_keep_wall_clock_time() -> None:
    aware = dt.datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Africa/Nairobi"))
    naive = dt.datetime(2026, 11, 2, 10, 0)
    frame = to_dataframe(
        [Event("EvAware0001", updated_at=aware), Event("EvNaive0001", updated_at=naive)]
    )
    assert not is_aware(frame["updated_at"])
    assert list(frame["updated_at"]) == [
        pd.Timestamp(2026, 11, 2, 9),
        pd.Timestamp(2026, 11, 2, 10),
    ]


def test_timestamps_in_different_zones_become_utc() -> None:
    nairobi = dt.datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Africa/Nairobi"))
    lima = dt.datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("America/Lima"))
    frame = to_dataframe(
        [Event("EvNairobi01", updated_at=nairobi), Event("EvLima00001", updated_at=lima)]
    )
    assert str(frame["updated_at"].dt.tz) == "UTC"
    assert frame.loc[0, "updated_at"] == pd.Timestamp(nairobi)
    assert frame.loc[1, "updated_at"] == pd.Timestamp(lima)


# -- requisitions, receipts, stock ---------------------------------------------------------------


def test_requisitions_frame_has_one_row_per_line_with_names(lmis: Dhis2Lmis) -> None:
    requisitions = list(lmis.fetch_completed_requisitions())
    frame = to_dataframe(requisitions)
    assert frame.shape == (sum(len(r.lines) for r in requisitions), 16)
    assert len(frame) == 12
    amox = frame[frame["item_code"] == "AMOX250"]
    assert set(amox["item_name"]) == {"Amoxicillin 250mg capsules"}
    assert set(frame["customer_name"]) == {
        "Riverside Health Centre",
        "Hilltop Dispensary",
        "Lakeview Clinic",
    }
    assert is_aware(frame["completed_at"])


def test_requisitions_frame_quantities_are_numeric(lmis: Dhis2Lmis) -> None:
    requisitions = list(lmis.fetch_completed_requisitions())
    frame = to_dataframe(requisitions)
    assert frame["quantity"].dtype == pd.Float64Dtype()
    expected = sum(line.quantity or Decimal(0) for r in requisitions for line in r.lines)
    assert Decimal(str(frame["quantity"].sum())) == expected


def test_requisitions_frame_joins_problems_as_text(lmis: Dhis2Lmis) -> None:
    frame = to_dataframe(lmis.fetch_completed_requisitions())
    unmapped = frame[frame["data_element"] == "COTRI480"]
    assert len(unmapped) == 2
    assert unmapped["item_code"].isna().all()
    assert unmapped["problems"].str.contains("no item has universal code COTRI480").all()
    clean = frame[~frame["event"].isin(unmapped["event"])]
    assert len(clean) == 8
    assert clean["problems"].isna().all()


def test_receipts_frame_has_one_row_per_receipt(lmis: Dhis2Lmis) -> None:
    frame = to_dataframe(lmis.fetch_completed_receipts())
    assert frame.shape == (3, 12)
    assert list(frame["consignment_number"]) == ["CN-2024-1001", "CN-2024-1002", "CN-2024-1003"]
    assert is_aware(frame["completed_at"])


def test_stock_transactions_frame_has_numeric_quantities(lmis: Dhis2Lmis) -> None:
    frame = to_dataframe(lmis.fetch_stock_transactions())
    assert frame.shape == (9, 12)
    assert frame["stock_on_hand"].dtype == pd.Float64Dtype()
    assert frame["received_quantity"].isna().all()
    assert frame["stock_on_hand"].sum() == sum(100 + 10 * i + f for f in range(3) for i in range(3))


def test_stock_levels_frame_pivots_to_facility_by_item(lmis: Dhis2Lmis) -> None:
    frame = to_dataframe(lmis.fetch_stock_on_hand())
    assert frame.shape == (9, 5)
    assert is_aware(frame["as_of"])
    pivot = frame.pivot_table(index="org_unit", columns="item_code", values="stock_on_hand")
    assert pivot.shape == (3, 3)
    assert pivot.loc[DEMO.facilities[2], "ORS200"] == 100 + 10 * 2 + 2


def test_stock_reports_frame_has_one_row_per_line(lmis: Dhis2Lmis) -> None:
    reports = list(lmis.fetch_stock_reports(PERIOD))
    frame = to_dataframe(reports)
    assert frame.shape == (15, 17)
    assert set(frame["period"]) == {PERIOD}
    assert set(frame["attribute_option_combo"]) == {"HllvX50cXC0"}  # DHIS2's default combo
    assert frame["value"].dtype == pd.Float64Dtype()
    assert frame["value"].sum() == sum(10 * f + i for f in range(3) for i in range(5))
    assert is_aware(frame["updated_at"])
    assert frame["complete_date"].dtype.kind == "M"


def test_stock_report_without_lines_is_one_row_of_its_problems() -> None:
    problem = RecordProblem("unknown_org_unit", "org unit OuGone00001 maps to nothing")
    report = StockReport("OuGone00001", None, None, PERIOD, None, (), (problem,))
    frame = to_dataframe([report])
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["org_unit"] == "OuGone00001" and row["problems"] == str(problem)
    assert pd.isna(row["attribute_option_combo"]) and pd.isna(row["value"])


# -- import conflicts --------------------------------------------------------------------------


def test_conflicts_frame_from_a_push_names_the_refused_row(lmis: Dhis2Lmis) -> None:
    builder = lmis.data_value_set(period=dt.date(2026, 10, 1), org_unit=DEMO.facilities[0])
    builder.add("SOH_AMOX250", 5)
    builder.add("NO_SUCH_ELEMENT", 3)
    summary = lmis.push_data_values(builder)
    frame = to_dataframe(summary)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["index"] == 1
    assert row["data_element"] == "NO_SUCH_ELEMENT"
    assert row["property"] == "dataElement"
    assert "NO_SUCH_ELEMENT" in row["message"]
    assert frame["index"].dtype == pd.Int64Dtype()


def test_conflicts_frame_from_conflicts_has_one_row_per_index() -> None:
    conflict = ImportConflict(
        "202613",
        "Period not valid",
        error_code="E7622",
        indexes=(0, 2),
        data_values=({"period": "202613", "value": "1"}, {"period": "202613", "value": "2"}),
    )
    frame = to_dataframe([conflict, ImportConflict(None, "Aborted")])
    assert list(frame["index"].fillna(-1)) == [0, 2, -1]
    assert list(frame["value"].fillna("")) == ["1", "2", ""]


def test_summary_without_conflicts_gives_an_empty_frame_with_columns() -> None:
    frame = to_dataframe(ImportSummary(status="SUCCESS", imported=3))
    assert frame.empty
    assert list(frame.columns) == ["index", "error_code", "property", "object", "message"]


# -- empty input, misuse, missing pandas -----------------------------------------------------------


def test_empty_input_with_kind_has_typed_columns() -> None:
    frame = to_dataframe(iter(()), kind="requisitions")
    assert frame.empty
    assert "quantity" in frame.columns
    assert frame["quantity"].dtype == pd.Float64Dtype()
    assert frame["item_name"].dtype == pd.StringDtype()


def test_empty_input_without_kind_is_an_empty_frame() -> None:
    frame = to_dataframe([])
    assert frame.empty
    assert list(frame.columns) == []


def test_records_of_two_types_are_refused(lmis: Dhis2Lmis) -> None:
    mixed = [*lmis.fetch_completed_receipts(), *lmis.pull("order")]
    with pytest.raises(TypeError, match="not a ConsignmentReceipt"):
        to_dataframe(mixed)


def test_kind_that_does_not_match_the_records_is_refused(lmis: Dhis2Lmis) -> None:
    with pytest.raises(TypeError, match="kind='events'"):
        to_dataframe(lmis.fetch_completed_receipts(), kind="events")


def test_wide_is_only_for_events(lmis: Dhis2Lmis) -> None:
    with pytest.raises(ValueError, match="wide=True is for events"):
        to_dataframe(lmis.fetch_stock_on_hand(), wide=True)


def test_unsupported_records_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot tabulate a dict"):
        to_dataframe([{"event": "x"}])  # type: ignore[list-item]


def test_missing_pandas_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError) as raised:
        to_dataframe([Event("EvNoPandas1")])
    assert "pip install 'dhis2-lmis[notebook]'" in str(raised.value)
    assert isinstance(raised.value, ImportError)
    assert isinstance(raised.value, Dhis2Error)
    assert raised.value.name == "pandas"
