"""Period ids as DHIS2 writes and parses them (WEB_API.md §7, checked against dhis2-core)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from dhis2_lmis.config import PERIOD_TYPE_NAMES
from dhis2_lmis.dhis2.periods import (
    Period,
    PeriodError,
    PeriodType,
    format_period,
    parse_period,
    period_for,
    period_type_named,
    period_type_of_format,
)
from dhis2_lmis.dhis2.versions import ServerVersion
from dhis2_lmis.errors import Dhis2Error
from dhis2_lmis.testing._periods import period_range
from dhis2_lmis.testing._version import parse_version

# --- every example printed in WEB_API.md §7 -------------------------------------------------

# Table column "Example", all for 2024-03-15. BiMonthly is the one exception, see below.
SECTION7_TABLE = [
    ("Daily", "20240315"),
    ("Weekly", "2024W11"),
    ("WeeklyWednesday", "2024WedW11"),
    ("WeeklyThursday", "2024ThuW11"),
    ("WeeklySaturday", "2024SatW11"),
    ("WeeklySunday", "2024SunW11"),
    ("BiWeekly", "2024BiW6"),
    ("Monthly", "202403"),
    ("Quarterly", "2024Q1"),
    ("QuarterlyNov", "2024NovQ2"),
    ("SixMonthly", "2024S1"),
    ("SixMonthlyApril", "2023AprilS2"),
    ("SixMonthlyNov", "2024NovS1"),
    ("Yearly", "2024"),
    ("FinancialApril", "2023April"),
    ("FinancialJuly", "2023July"),
    ("FinancialSep", "2023Sep"),
    ("FinancialOct", "2023Oct"),
    ("FinancialNov", "2024Nov"),
]


@pytest.mark.parametrize(("type_name", "expected"), SECTION7_TABLE)
def test_section7_table_example_for_2024_03_15(type_name: str, expected: str) -> None:
    assert format_period(date(2024, 3, 15), type_name) == expected


def test_bimonthly_id_carries_the_block_index_as_dhis2_core_does() -> None:
    # §7's table prints 202403B with "MM = first month", but dhis2-core's
    # BiMonthlyPeriodType.getIsoDate writes (month + 1) / 2 and DateUnitPeriodTypeParser reads
    # month * 2 - 1 (rejecting > 6). The code wins: March-April is block 02.
    period = period_for(date(2024, 3, 15), PeriodType.BI_MONTHLY)
    assert period.id == "202402B"
    assert (period.start, period.end) == (date(2024, 3, 1), date(2024, 4, 30))


SECTION7_EXAMPLES = [
    ((2020, 12, 31), "Weekly", "2020W53"),
    ((2021, 1, 1), "Weekly", "2020W53"),
    ((2021, 1, 1), "WeeklyWednesday", "2021WedW1"),
    ((2021, 1, 1), "WeeklySaturday", "2020SatW52"),
    ((2021, 1, 1), "WeeklySunday", "2020SunW53"),
    ((2021, 1, 4), "Weekly", "2021W1"),
    ((2024, 12, 30), "Weekly", "2025W1"),
    ((2024, 12, 30), "WeeklySunday", "2025SunW1"),
    ((2024, 12, 30), "WeeklyWednesday", "2024WedW52"),
]


@pytest.mark.parametrize(("ymd", "type_name", "expected"), SECTION7_EXAMPLES)
def test_section7_week_examples(ymd: tuple[int, int, int], type_name: str, expected: str) -> None:
    assert period_for(date(*ymd), type_name).id == expected


def test_section7_quarterly_nov_q1_is_labelled_with_the_end_year() -> None:
    period = parse_period("2025NovQ1")
    assert (period.start, period.end) == (date(2024, 11, 1), date(2025, 1, 31))


def test_section7_financial_nov_covers_nov_of_previous_year_to_oct() -> None:
    period = parse_period("2024Nov")
    assert (period.start, period.end) == (date(2023, 11, 1), date(2024, 10, 31))


def test_section7_biw27_starts_in_iso_week_53_and_lasts_fourteen_days() -> None:
    period = parse_period("2020BiW27")
    assert (period.start, period.end) == (date(2020, 12, 28), date(2021, 1, 10))
    assert period_for(date(2021, 1, 1), PeriodType.BI_WEEKLY) == period


def test_section7_alternative_forms_are_parsed() -> None:
    assert parse_period("2024W01").id == "2024W1"
    assert parse_period("2024-03").id == "202403"
    assert parse_period("2024-03-15").id == "20240315"


# --- an independent table, worked out by hand from a calendar -------------------------------
# Facts used: 2015-01-01 and 2026-01-01 are Thursdays (53 ISO weeks); 2020-12-31 Thu;
# 2021-01-01 Fri; 2022-12-31 Sat; 2023-01-01 Sun; 2024-12-30 Mon; 2018-12-31 Mon;
# 2020-01-04 Sat; 2019-01-04 Fri; 2024-01-04 Thu; 2021-01-04 Mon.

HAND_TABLE = [
    ((2015, 12, 31), "Weekly", "2015W53"),
    ((2016, 1, 3), "Weekly", "2015W53"),
    ((2016, 1, 4), "Weekly", "2016W1"),
    ((2018, 12, 31), "Weekly", "2019W1"),
    ((2023, 1, 1), "Weekly", "2022W52"),
    ((2023, 1, 2), "Weekly", "2023W1"),
    ((2027, 1, 1), "Weekly", "2026W53"),
    ((2023, 1, 1), "WeeklySunday", "2023SunW1"),
    ((2022, 12, 31), "WeeklySunday", "2022SunW52"),
    ((2020, 12, 29), "WeeklyWednesday", "2020WedW52"),
    ((2025, 1, 1), "WeeklyWednesday", "2025WedW1"),
    ((2021, 1, 1), "WeeklyThursday", "2021ThuW1"),
    ((2020, 12, 30), "WeeklyThursday", "2020ThuW52"),
    ((2021, 1, 2), "WeeklySaturday", "2021SatW1"),
    ((2020, 1, 3), "WeeklySaturday", "2019SatW53"),
    ((2021, 1, 4), "BiWeekly", "2021BiW1"),
    ((2021, 1, 12), "BiWeekly", "2021BiW1"),
    ((2024, 12, 30), "BiWeekly", "2025BiW1"),
    ((2024, 12, 29), "BiWeekly", "2024BiW26"),
    ((2024, 2, 29), "Daily", "20240229"),
    ((2024, 12, 31), "Monthly", "202412"),
    ((2024, 12, 31), "BiMonthly", "202406B"),
    ((2025, 1, 1), "BiMonthly", "202501B"),
    ((2024, 2, 29), "BiMonthly", "202401B"),
    ((2024, 12, 31), "Quarterly", "2024Q4"),
    ((2025, 1, 1), "Quarterly", "2025Q1"),
    ((2024, 10, 31), "QuarterlyNov", "2024NovQ4"),
    ((2024, 11, 1), "QuarterlyNov", "2025NovQ1"),
    ((2025, 1, 31), "QuarterlyNov", "2025NovQ1"),
    ((2025, 2, 1), "QuarterlyNov", "2025NovQ2"),
    ((2024, 6, 30), "SixMonthly", "2024S1"),
    ((2024, 7, 1), "SixMonthly", "2024S2"),
    ((2024, 3, 31), "SixMonthlyApril", "2023AprilS2"),
    ((2024, 4, 1), "SixMonthlyApril", "2024AprilS1"),
    ((2024, 10, 1), "SixMonthlyApril", "2024AprilS2"),
    ((2024, 10, 31), "SixMonthlyNov", "2024NovS2"),
    ((2024, 11, 1), "SixMonthlyNov", "2025NovS1"),
    ((2025, 4, 30), "SixMonthlyNov", "2025NovS1"),
    ((2025, 5, 1), "SixMonthlyNov", "2025NovS2"),
    ((2024, 12, 31), "Yearly", "2024"),
    ((2024, 3, 31), "FinancialApril", "2023April"),
    ((2024, 4, 1), "FinancialApril", "2024April"),
    ((2024, 6, 30), "FinancialJuly", "2023July"),
    ((2024, 7, 1), "FinancialJuly", "2024July"),
    ((2024, 8, 31), "FinancialSep", "2023Sep"),
    ((2024, 9, 1), "FinancialSep", "2024Sep"),
    ((2024, 9, 30), "FinancialOct", "2023Oct"),
    ((2024, 10, 1), "FinancialOct", "2024Oct"),
    ((2024, 10, 31), "FinancialNov", "2024Nov"),
    ((2024, 11, 1), "FinancialNov", "2025Nov"),
]


@pytest.mark.parametrize(("ymd", "type_name", "expected"), HAND_TABLE)
def test_hand_computed_period_ids_around_year_boundaries(
    ymd: tuple[int, int, int], type_name: str, expected: str
) -> None:
    assert period_for(date(*ymd), type_name).id == expected


HAND_BOUNDS = [
    ("2023AprilS2", (2023, 10, 1), (2024, 3, 31)),
    ("2024NovS1", (2023, 11, 1), (2024, 4, 30)),
    ("2023April", (2023, 4, 1), (2024, 3, 31)),
    ("2024SunW1", (2023, 12, 31), (2024, 1, 6)),
    ("2015W53", (2015, 12, 28), (2016, 1, 3)),
    ("202406B", (2024, 11, 1), (2024, 12, 31)),
    ("2024Q1", (2024, 1, 1), (2024, 3, 31)),
    ("2023Oct", (2023, 10, 1), (2024, 9, 30)),
]


@pytest.mark.parametrize(("period_id", "start", "end"), HAND_BOUNDS)
def test_parsed_period_covers_hand_computed_dates(
    period_id: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    period = parse_period(period_id)
    assert (period.start, period.end) == (date(*start), date(*end))


# --- the DHIS2 2.43 additions (dhis2-core tag 2.43.0) ----------------------------------------
# WeeklyFriday weeks run Friday to Thursday; week 1 is the one holding 4 January, and the id's
# year is the year holding most (4+) of the week's days. FinancialFeb and FinancialAug years are
# labelled with the year they start in. Calendar facts: 2027-01-01, 2021-01-01, 2019-01-04 and
# 2024-12-27 are Fridays; 2020-01-04 a Saturday; 2024-01-04 a Thursday.

DHIS2_243_TABLE = [
    ("2027FriW1", (2027, 1, 1), (2027, 1, 7)),
    ("2021FriW1", (2021, 1, 1), (2021, 1, 7)),
    ("2022FriW1", (2021, 12, 31), (2022, 1, 6)),  # the week starts in the old year
    ("2019FriW1", (2019, 1, 4), (2019, 1, 10)),
    ("2020FriW1", (2020, 1, 3), (2020, 1, 9)),
    ("2024FriW1", (2023, 12, 29), (2024, 1, 4)),
    ("2024FriW53", (2024, 12, 27), (2025, 1, 2)),  # Jan 4 on a Thursday: a 53-week year
    ("2027Feb", (2027, 2, 1), (2028, 1, 31)),
    ("2024Feb", (2024, 2, 1), (2025, 1, 31)),
    ("2027Aug", (2027, 8, 1), (2028, 7, 31)),
]


@pytest.mark.parametrize(("period_id", "start", "end"), DHIS2_243_TABLE)
def test_dhis2_243_period_ids_cover_the_dhis2_core_dates(
    period_id: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    period = parse_period(period_id)
    assert (period.start, period.end, period.id) == (date(*start), date(*end), period_id)
    for day in (period.start, period.end):
        assert format_period(day, period.type.value) == period_id


@pytest.mark.parametrize(
    ("ymd", "type_name", "expected"),
    [
        ((2026, 12, 31), "WeeklyFriday", "2026FriW52"),
        ((2020, 1, 2), "WeeklyFriday", "2019FriW52"),
        ((2024, 3, 15), "WeeklyFriday", "2024FriW12"),
        ((2028, 1, 31), "FinancialFeb", "2027Feb"),
        ((2028, 2, 1), "FinancialFeb", "2028Feb"),
        ((2024, 3, 15), "FinancialFeb", "2024Feb"),
        ((2027, 7, 31), "FinancialAug", "2026Aug"),
        ((2027, 8, 1), "FinancialAug", "2027Aug"),
    ],
)
def test_dhis2_243_types_label_dates_like_dhis2(
    ymd: tuple[int, int, int], type_name: str, expected: str
) -> None:
    assert format_period(date(*ymd), type_name) == expected


def test_dhis2_243_types_step_to_the_next_and_previous_period() -> None:
    assert parse_period("2027Feb").next().id == "2028Feb"
    assert parse_period("2027Aug").previous().id == "2026Aug"
    assert parse_period("2024FriW53").next().id == "2025FriW1"
    assert parse_period("2025FriW1").previous().id == "2024FriW53"


@pytest.mark.parametrize(
    ("ptype", "version", "exists"),
    [
        (PeriodType.FINANCIAL_FEB, "2.42.3", False),
        (PeriodType.FINANCIAL_FEB, "2.43.0", True),
        (PeriodType.WEEKLY_FRIDAY, "2.43.1", True),
        (PeriodType.FINANCIAL_AUG, "2.41.0", False),
        (PeriodType.FINANCIAL_SEP, "2.41.4", False),
        (PeriodType.FINANCIAL_SEP, "2.42.0", True),
        (PeriodType.QUARTERLY_NOV, "2.38.3", False),
        (PeriodType.QUARTERLY_NOV, "2.38.4", True),
        (PeriodType.QUARTERLY_NOV, "2.39.2", False),
        (PeriodType.QUARTERLY_NOV, "2.39.3", True),
        (PeriodType.QUARTERLY_NOV, "2.40.0", True),
        (PeriodType.MONTHLY, "2.36.0", True),
    ],
)
def test_period_type_exists_from_its_dhis2_release(
    ptype: PeriodType, version: str, exists: bool
) -> None:
    assert ptype.exists_in(ServerVersion.parse(version)) is exists


def test_configuration_accepts_exactly_the_period_types_known_here() -> None:
    assert tuple(t.value for t in PeriodType) == PERIOD_TYPE_NAMES


def test_period_type_since_names_the_first_release() -> None:
    assert PeriodType.FINANCIAL_FEB.since == "2.43"
    assert PeriodType.QUARTERLY_NOV.since == "2.38.4 / 2.39.3 / 2.40"
    assert PeriodType.WEEKLY.since is None


# --- properties over every day of 2019-2027 --------------------------------------------------

DAYS = [date(2019, 1, 1) + timedelta(days=n) for n in range(0, 9 * 366, 3)]


@pytest.mark.parametrize("ptype", list(PeriodType))
def test_period_for_contains_the_day_and_round_trips_through_its_id(ptype: PeriodType) -> None:
    for day in DAYS:
        period = period_for(day, ptype)
        assert period.contains(day), (day, period)
        assert parse_period(period.id) == period


@pytest.mark.parametrize("ptype", list(PeriodType))
def test_offline_dhis2_reads_every_period_id_to_the_same_dates(ptype: PeriodType) -> None:
    # FakeDhis2 works the dates out its own way; the two agreeing is the cross-check
    newest = parse_version("2.43")
    for day in DAYS:
        period = period_for(day, ptype)
        assert period_range(period.id, newest) == (ptype.value, period.start, period.end)


@pytest.mark.parametrize("period_id", ["2027FriW1", "2027Feb", "2027Aug"])
def test_offline_dhis2_accepts_243_periods_only_from_243(period_id: str) -> None:
    assert period_range(period_id, parse_version("2.43.0")) is not None
    assert period_range(period_id, parse_version("2.42.2")) is None


@pytest.mark.parametrize("ptype", [t for t in PeriodType if t is not PeriodType.BI_WEEKLY])
def test_periods_tile_the_calendar_without_gaps(ptype: PeriodType) -> None:
    period = period_for(date(2019, 1, 1), ptype)
    while period.start < date(2028, 1, 1):
        nxt = period.next()
        assert nxt.start == period.end + timedelta(days=1)
        assert nxt.previous() == period
        period = nxt


def test_weekly_matches_python_isocalendar() -> None:
    for day in DAYS:
        iso = day.isocalendar()
        assert period_for(day, PeriodType.WEEKLY).id == f"{iso[0]}W{iso[1]}"


def test_biweekly_next_after_biw27_is_next_years_biw1() -> None:
    assert parse_period("2020BiW27").next().id == "2021BiW1"
    assert parse_period("2021BiW1").previous().id == "2020BiW27"


def test_period_for_accepts_a_datetime_and_a_case_insensitive_type_name() -> None:
    assert period_for(datetime(2024, 3, 15, 23, 59), "monthly").id == "202403"


def test_period_is_frozen_and_prints_its_id() -> None:
    period = parse_period("2024Q1")
    assert str(period) == "2024Q1"
    assert isinstance(period, Period)
    with pytest.raises(AttributeError):
        period.id = "x"  # type: ignore[misc]  # proving the record is frozen


def test_period_type_values_are_dhis2_names() -> None:
    assert PeriodType("FinancialSep") is PeriodType.FINANCIAL_SEP
    assert PeriodType("WeeklyFriday") is PeriodType.WEEKLY_FRIDAY
    assert len(PeriodType) == 23  # DHIS2 2.43's 24 types, less TwoYearly (no ISO id)


# --- format_period and period_type_of_format -------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("YYYYMMDD", "20240305"),
        ("YYYY-MM-DD", "2024-03-05"),
        ("YYYYMM", "202403"),
        ("YYYY-MM", "2024-03"),
        ("YYYY", "2024"),
        ("yyyyMM", "202403"),
        ("Weekly", "2024W10"),
        ("weekly", "2024W10"),
        ("FINANCIALNOV", "2024Nov"),
    ],
)
def test_format_period_by_pattern_or_type_name(fmt: str, expected: str) -> None:
    assert format_period(date(2024, 3, 5), fmt) == expected


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("YYYYMM", PeriodType.MONTHLY),
        ("YYYY-MM", PeriodType.MONTHLY),
        ("YYYYMMDD", PeriodType.DAILY),
        ("YYYY-MM-DD", PeriodType.DAILY),
        ("YYYY", PeriodType.YEARLY),
        ("QuarterlyNov", PeriodType.QUARTERLY_NOV),
    ],
)
def test_period_type_of_format(fmt: str, expected: PeriodType) -> None:
    assert period_type_of_format(fmt) is expected


@pytest.mark.parametrize("fmt", ["MMYYYY", "YYYYWW", "", "DD-MM-YYYY", "Fortnightly", "TwoYearly"])
def test_unknown_format_raises_period_error_listing_accepted_forms(fmt: str) -> None:
    with pytest.raises(PeriodError) as info:
        format_period(date(2024, 3, 5), fmt)
    assert repr(fmt) in str(info.value)
    assert "YYYYMM" in str(info.value)
    assert "FinancialNov" in str(info.value)
    with pytest.raises(PeriodError):
        period_type_of_format(fmt)


# --- bad ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "period_id",
    [
        "",
        "foo",
        "2024W54",
        "2021W53",  # 2021 has 52 ISO weeks
        "2024W0",
        "2024BiW27",  # only 53-week years have a BiW27
        "2021SunW54",
        "202407B",
        "202400B",
        "2024Q5",
        "2024Q0",
        "2024S3",
        "2024NovQ5",
        "20240230",
        "2024-13",
        "202413",
        "2024-02-30",
        "0000",
        "2024 W1",
        "2024w1",
        "２０２４",  # full-width digits are not DHIS2 digits
        "2024Apr",
    ],
)
def test_unparseable_id_raises_period_error_naming_it(period_id: str) -> None:
    with pytest.raises(PeriodError) as info:
        parse_period(period_id)
    assert repr(period_id) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, Dhis2Error)


def test_unknown_id_error_lists_accepted_forms() -> None:
    with pytest.raises(PeriodError, match="yyyyNovQn") as info:
        parse_period("2024X1")
    for form in ("yyyyFriWn", "yyyyFeb", "yyyyAug"):
        assert form in str(info.value)


@pytest.mark.parametrize(
    ("period_id", "says"),
    [
        ("2024-13", "month 13 is out of range (01-12)"),
        ("202413", "month 13 is out of range (01-12)"),
        ("2024-00", "month 00 is out of range (01-12)"),
        ("20241301", "month 13 is out of range (01-12)"),
        ("20240230", "day 30 is out of range: Feb 2024 has 29 days"),
        ("2023-02-29", "day 29 is out of range: Feb 2023 has 28 days"),
        ("2024W54", "Weekly week 54 is out of range (1-52 in 2024)"),
        ("2021W53", "Weekly week 53 is out of range (1-52 in 2021)"),
        ("2020W0", "Weekly week 0 is out of range (1-53 in 2020)"),
        ("2021FriW53", "WeeklyFriday week 53 is out of range (1-52 in 2021)"),
        ("2021SunW54", "WeeklySunday week 54 is out of range (1-52 in 2021)"),
        ("2024BiW27", "bi-week 27 is out of range (1-26 in 2024)"),
        ("202407B", "bi-month 07 is out of range (01-06)"),
        ("2024Q5", "quarter 5 is out of range (1-4)"),
        ("2024NovQ0", "quarter 0 is out of range (1-4)"),
        ("2024S3", "half-year 3 is out of range (1-2)"),
        ("2024AprilS3", "half-year 3 is out of range (1-2)"),
        ("0000", "year 0000 is out of range (0001-9999)"),
        ("0000Feb", "year 0000 is out of range (0001-9999)"),
    ],
)
def test_id_of_a_known_form_says_which_part_is_out_of_range(period_id: str, says: str) -> None:
    with pytest.raises(PeriodError) as info:
        parse_period(period_id)
    assert str(info.value) == f"period id {period_id!r}: {says}"


def test_unknown_period_type_names_the_dhis2_versions() -> None:
    with pytest.raises(PeriodError) as info:
        period_type_named("WeeklyTuesday", server_version=ServerVersion.parse("2.44.1"))
    message = str(info.value)
    assert "'WeeklyTuesday'" in message
    assert "this server runs DHIS2 2.44.1" in message
    assert "DHIS2 2.36 to 2.43" in message
    assert "newer dhis2-lmis" in message
    with pytest.raises(PeriodError, match=r"DHIS2 2\.36 to 2\.43"):
        period_for(date(2024, 1, 1), "WeeklyTuesday")
    assert period_type_named("financialfeb") is PeriodType.FINANCIAL_FEB


def test_valid_week_53_in_a_53_week_year_parses() -> None:
    assert parse_period("2020W53").start == date(2020, 12, 28)


def test_unknown_period_type_name_raises_period_error() -> None:
    with pytest.raises(PeriodError, match="Fortnightly"):
        period_for(date(2024, 1, 1), "Fortnightly")


def test_period_beyond_supported_years_raises_period_error() -> None:
    with pytest.raises(PeriodError):
        period_for(date(9999, 12, 31), PeriodType.FINANCIAL_NOV)
