"""DHIS2 periods: ISO period ids, the dates they cover, and formatting dates into them.

DHIS2 identifies every aggregate period by a string such as ``202403``, ``2024W11`` or
``2024NovQ2``. The rules behind those strings are easy to get subtly wrong, so they live here once:

* weekly types use *week-based* years (``2021-01-01`` is in ``2020W53``) and write the week number
  without zero padding, though the server also parses ``W01``;
* ``BiWeekly`` periods always start on an odd ISO week and last 14 days, so in a 53-week year
  ``BiW27`` starts in week 53 and runs into the next year's ``BiW1``;
* ``BiMonthly`` ids carry the *index* of the two-month block (``202402B`` is March–April), as in
  ``BiMonthlyPeriodType.getIsoDate`` and the parser's ``month * 2 - 1``;
* the November types (``QuarterlyNov``, ``SixMonthlyNov``, ``FinancialNov``) are labelled with the
  year their Nov–Oct cycle *ends*, while ``SixMonthlyApril`` and ``FinancialApril``, ``July``,
  ``Sep`` and ``Oct`` use the year it *starts*.

Only the ISO-8601 calendar is supported; DHIS2 instances on Ethiopian or Nepali calendars still
exchange ISO period ids, but their period boundaries differ.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

import attrs

from dhis2_lmis.errors import PeriodError

__all__ = [
    "Period",
    "PeriodError",
    "PeriodType",
    "format_period",
    "parse_period",
    "period_for",
    "period_type_of_format",
]

log = logging.getLogger(__name__)


class PeriodType(str, enum.Enum):
    """Every DHIS2 period type usable in data values; the value is DHIS2's ``periodType`` name.

    ``TwoYearly`` is left out on purpose: DHIS2 gives it no ISO id, so no data value can use it.
    """

    DAILY = "Daily"
    WEEKLY = "Weekly"
    WEEKLY_WEDNESDAY = "WeeklyWednesday"
    WEEKLY_THURSDAY = "WeeklyThursday"
    WEEKLY_SATURDAY = "WeeklySaturday"
    WEEKLY_SUNDAY = "WeeklySunday"
    BI_WEEKLY = "BiWeekly"
    MONTHLY = "Monthly"
    BI_MONTHLY = "BiMonthly"
    QUARTERLY = "Quarterly"
    QUARTERLY_NOV = "QuarterlyNov"
    SIX_MONTHLY = "SixMonthly"
    SIX_MONTHLY_APRIL = "SixMonthlyApril"
    SIX_MONTHLY_NOV = "SixMonthlyNov"
    YEARLY = "Yearly"
    FINANCIAL_APRIL = "FinancialApril"
    FINANCIAL_JULY = "FinancialJuly"
    FINANCIAL_SEP = "FinancialSep"
    FINANCIAL_OCT = "FinancialOct"
    FINANCIAL_NOV = "FinancialNov"

    def __str__(self) -> str:
        return self.value


_ONE_DAY = timedelta(days=1)

# Weekly types: (first weekday, 0 = Monday; infix written between year and week number).
_WEEKLY: dict[PeriodType, tuple[int, str]] = {
    PeriodType.WEEKLY: (0, "W"),
    PeriodType.WEEKLY_WEDNESDAY: (2, "WedW"),
    PeriodType.WEEKLY_THURSDAY: (3, "ThuW"),
    PeriodType.WEEKLY_SATURDAY: (5, "SatW"),
    PeriodType.WEEKLY_SUNDAY: (6, "SunW"),
}


@attrs.frozen
class _MonthRule:
    """A period type made of whole months inside a yearly cycle starting in ``first_month``.

    ``end_year_label`` is true for the November types, whose ids carry the year the cycle ends.
    ``label`` turns (label year, 1-based index of the period in the cycle) into the id.
    """

    first_month: int
    months: int
    end_year_label: bool
    label: Callable[[int, int], str]
    pattern: str

    @property
    def per_cycle(self) -> int:
        return 12 // self.months


_MONTHLY: dict[PeriodType, _MonthRule] = {
    PeriodType.MONTHLY: _MonthRule(1, 1, False, lambda y, i: f"{y}{i:02d}", r"(\d{4})-?(\d{2})"),
    PeriodType.BI_MONTHLY: _MonthRule(1, 2, False, lambda y, i: f"{y}{i:02d}B", r"(\d{4})(\d{2})B"),
    PeriodType.QUARTERLY: _MonthRule(1, 3, False, lambda y, i: f"{y}Q{i}", r"(\d{4})Q(\d)"),
    PeriodType.QUARTERLY_NOV: _MonthRule(
        11, 3, True, lambda y, i: f"{y}NovQ{i}", r"(\d{4})NovQ(\d)"
    ),
    PeriodType.SIX_MONTHLY: _MonthRule(1, 6, False, lambda y, i: f"{y}S{i}", r"(\d{4})S(\d)"),
    PeriodType.SIX_MONTHLY_APRIL: _MonthRule(
        4, 6, False, lambda y, i: f"{y}AprilS{i}", r"(\d{4})AprilS(\d)"
    ),
    PeriodType.SIX_MONTHLY_NOV: _MonthRule(
        11, 6, True, lambda y, i: f"{y}NovS{i}", r"(\d{4})NovS(\d)"
    ),
    PeriodType.YEARLY: _MonthRule(1, 12, False, lambda y, i: f"{y}", r"(\d{4})"),
    PeriodType.FINANCIAL_APRIL: _MonthRule(4, 12, False, lambda y, i: f"{y}April", r"(\d{4})April"),
    PeriodType.FINANCIAL_JULY: _MonthRule(7, 12, False, lambda y, i: f"{y}July", r"(\d{4})July"),
    PeriodType.FINANCIAL_SEP: _MonthRule(9, 12, False, lambda y, i: f"{y}Sep", r"(\d{4})Sep"),
    PeriodType.FINANCIAL_OCT: _MonthRule(10, 12, False, lambda y, i: f"{y}Oct", r"(\d{4})Oct"),
    PeriodType.FINANCIAL_NOV: _MonthRule(11, 12, True, lambda y, i: f"{y}Nov", r"(\d{4})Nov"),
}

_ACCEPTED_IDS = (
    "yyyyMMdd, yyyy-MM-dd, yyyyWn, yyyyWedWn, yyyyThuWn, yyyySatWn, yyyySunWn, yyyyBiWn, "
    "yyyyMM, yyyy-MM, yyyyMMB (MM = 01-06), yyyyQn, yyyyNovQn, yyyySn, yyyyAprilSn, yyyyNovSn, "
    "yyyy, yyyyApril, yyyyJuly, yyyySep, yyyyOct, yyyyNov"
)

# Date-token patterns whose output DHIS2 parses as a period id, keyed by the pattern upper-cased.
_TOKEN_FORMATS: dict[str, tuple[PeriodType, str]] = {
    "YYYYMMDD": (PeriodType.DAILY, "{y:04d}{m:02d}{d:02d}"),
    "YYYY-MM-DD": (PeriodType.DAILY, "{y:04d}-{m:02d}-{d:02d}"),
    "YYYYMM": (PeriodType.MONTHLY, "{y:04d}{m:02d}"),
    "YYYY-MM": (PeriodType.MONTHLY, "{y:04d}-{m:02d}"),
    "YYYY": (PeriodType.YEARLY, "{y:04d}"),
}

_TYPE_BY_LOWER_NAME = {t.value.lower(): t for t in PeriodType}


@attrs.frozen
class Period:
    """One DHIS2 period: its type, first and last day (both inclusive) and canonical ISO id.

    Build one with :func:`period_for` or :func:`parse_period`; ``id`` is always the form DHIS2
    itself writes (``2024W1``, never ``2024W01``).
    """

    type: PeriodType
    start: date
    end: date
    id: str

    def next(self) -> Period:
        """Return the period of the same type that follows this one."""
        return period_for(self.end + _ONE_DAY, self.type)

    def previous(self) -> Period:
        """Return the period of the same type that precedes this one."""
        return period_for(self.start - _ONE_DAY, self.type)

    def contains(self, day: date) -> bool:
        """Return whether ``day`` (a date, or a datetime's date) lies within this period."""
        return self.start <= _as_date(day) <= self.end

    def __str__(self) -> str:
        return self.id


def _as_date(day: date) -> date:
    return day.date() if isinstance(day, datetime) else day


def _coerce_type(period_type: PeriodType | str) -> PeriodType:
    if isinstance(period_type, PeriodType):
        return period_type
    found = _TYPE_BY_LOWER_NAME.get(str(period_type).strip().lower())
    if found is None:
        names = ", ".join(t.value for t in PeriodType)
        raise PeriodError(
            f"unknown period type {period_type!r}; accepted: {names}", value=str(period_type)
        )
    return found


def _add_months(year: int, month0: int) -> tuple[int, int]:
    """Return (year, 1-based month) for a 0-based month offset from January of ``year``."""
    return year + month0 // 12, month0 % 12 + 1


def _month_period(rule: _MonthRule, period_type: PeriodType, cycle_year: int, index: int) -> Period:
    start_y, start_m = _add_months(cycle_year, rule.first_month - 1 + (index - 1) * rule.months)
    next_y, next_m = _add_months(start_y, start_m - 1 + rule.months)
    start = date(start_y, start_m, 1)
    end = date(next_y, next_m, 1) - _ONE_DAY
    label_year = cycle_year + 1 if rule.end_year_label else cycle_year
    return Period(period_type, start, end, rule.label(label_year, index))


def _week1_start(year: int, first_weekday: int) -> date:
    """First day of week 1 of a week-based year: the week holding 4 January."""
    jan4 = date(year, 1, 4)
    return jan4 - timedelta(days=(jan4.weekday() - first_weekday) % 7)


def _weeks_in_year(year: int, first_weekday: int) -> int:
    return (_week1_start(year + 1, first_weekday) - _week1_start(year, first_weekday)).days // 7


def _week_of(day: date, first_weekday: int) -> tuple[int, int, date]:
    """Return (week-based year, week number, first day of the week) for ``day``."""
    week_start = day - timedelta(days=(day.weekday() - first_weekday) % 7)
    year = (week_start + timedelta(days=3)).year  # the week belongs where its 4th day falls
    number = (week_start - _week1_start(year, first_weekday)).days // 7 + 1
    return year, number, week_start


def period_for(day: date, period_type: PeriodType | str) -> Period:
    """Return the period of ``period_type`` that contains ``day``.

    Args:
        day: the date (a datetime is reduced to its date, without time-zone conversion).
        period_type: a :class:`PeriodType` or its DHIS2 name, matched case-insensitively.

    Returns:
        The period, with its canonical ISO id.

    Raises:
        PeriodError: ``period_type`` is not a DHIS2 period type name.
    """
    ptype = _coerce_type(period_type)
    day = _as_date(day)
    try:
        return _period_for(day, ptype)
    except (ValueError, OverflowError) as exc:  # beyond date.min / date.max
        raise PeriodError(
            f"no {ptype.value} period for {day.isoformat()}: outside the supported years",
            value=day.isoformat(),
        ) from exc


def _period_for(day: date, ptype: PeriodType) -> Period:
    if ptype is PeriodType.DAILY:
        return Period(ptype, day, day, f"{day.year:04d}{day.month:02d}{day.day:02d}")
    if ptype in _WEEKLY:
        first_weekday, infix = _WEEKLY[ptype]
        year, number, start = _week_of(day, first_weekday)
        return Period(ptype, start, start + timedelta(days=6), f"{year}{infix}{number}")
    if ptype is PeriodType.BI_WEEKLY:
        year, number, week_start = _week_of(day, 0)
        bi = (number + 1) // 2
        start = week_start - timedelta(days=7 * ((number + 1) % 2))  # even week: go back one
        return Period(ptype, start, start + timedelta(days=13), f"{year}BiW{bi}")
    rule = _MONTHLY[ptype]
    cycle_year = day.year if day.month >= rule.first_month else day.year - 1
    index = ((day.month - rule.first_month) % 12) // rule.months + 1
    return _month_period(rule, ptype, cycle_year, index)


def format_period(day: date, fmt: str) -> str:
    """Format ``day`` as a DHIS2 period id, by date pattern or by period type name.

    ``fmt`` is either a period type name (``"Weekly"``, ``"quarterlynov"``; case-insensitive) or
    a date pattern DHIS2 parses as a period: ``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYYMM``,
    ``YYYY-MM`` or ``YYYY`` (tokens case-insensitive, so Java's ``yyyyMM`` works too).

    Example:
        ``format_period(date(2024, 3, 15), "Weekly") == "2024W11"``

    Raises:
        PeriodError: ``fmt`` is neither a known pattern nor a period type name.
    """
    ptype = _TYPE_BY_LOWER_NAME.get(fmt.strip().lower())
    if ptype is not None:
        return period_for(day, ptype).id
    token = _TOKEN_FORMATS.get(fmt.strip().upper())
    if token is None:
        raise PeriodError(_bad_format_message(fmt), value=fmt)
    day = _as_date(day)
    return token[1].format(y=day.year, m=day.month, d=day.day)


def period_type_of_format(fmt: str) -> PeriodType:
    """Return the period type that ids produced by ``fmt`` (see :func:`format_period`) belong to.

    Used at start-up to check that a data set's ``periodType`` fits the configured
    ``period_format`` (a monthly data set fed with ``YYYYMMDD`` ids would be rejected per value).

    Raises:
        PeriodError: ``fmt`` is neither a known pattern nor a period type name.
    """
    ptype = _TYPE_BY_LOWER_NAME.get(fmt.strip().lower())
    if ptype is not None:
        return ptype
    token = _TOKEN_FORMATS.get(fmt.strip().upper())
    if token is None:
        raise PeriodError(_bad_format_message(fmt), value=fmt)
    return token[0]


def _bad_format_message(fmt: str) -> str:
    patterns = ", ".join(_TOKEN_FORMATS)
    names = ", ".join(t.value for t in PeriodType)
    return (
        f"unknown period format {fmt!r}; use a date pattern ({patterns}) "
        f"or a period type name ({names})"
    )


_DAILY_RE = re.compile(r"(\d{4})(\d{2})(\d{2})|(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_WEEK_RE = re.compile(r"(\d{4})(W|WedW|ThuW|SatW|SunW|BiW)(\d{1,2})", re.ASCII)
_WEEK_INFIX = {infix: ptype for ptype, (_, infix) in _WEEKLY.items()}
_MONTH_RES = [(ptype, rule, re.compile(rule.pattern, re.ASCII)) for ptype, rule in _MONTHLY.items()]


def parse_period(period_id: str) -> Period:
    """Parse any ISO period id DHIS2 accepts into a :class:`Period`.

    Accepts every form in :data:`PeriodType`'s table, plus the alternatives the server parses:
    ``W01`` as well as ``W1`` and ``yyyy-MM`` / ``yyyy-MM-dd``. The returned ``id`` is canonical,
    so ``parse_period("2024-03").id == "202403"``.

    Raises:
        PeriodError: the id matches no form, or names a day, week, month or index that does not
            exist (``20240230``, ``2021W53``, ``2024Q5``, ``202407B``).
    """
    if not isinstance(period_id, str):
        raise PeriodError(
            f"period id must be a string, got {type(period_id).__name__}",
            value=repr(period_id),
        )
    text = period_id.strip()
    try:
        parsed = _parse(text)
    except (
        ValueError,
        OverflowError,
    ) as exc:  # date() refused a day/month/year that does not exist
        raise PeriodError(f"period id {period_id!r} names no real date: {exc}", value=text) from exc
    if parsed is None:
        raise PeriodError(
            f"unknown period id {period_id!r}; accepted forms: {_ACCEPTED_IDS}", value=text
        )
    return parsed


def _parse(text: str) -> Period | None:
    match = _DAILY_RE.fullmatch(text)
    if match:
        parts = match.groups()[:3] if match.group(1) else match.groups()[3:]
        return period_for(date(*(int(p) for p in parts)), PeriodType.DAILY)
    match = _WEEK_RE.fullmatch(text)
    if match:
        year, infix, number = int(match.group(1)), match.group(2), int(match.group(3))
        if infix == "BiW":
            week = number * 2 - 1
            if year < 1 or not 1 <= week <= _weeks_in_year(year, 0):
                return None
            start = _week1_start(year, 0) + timedelta(days=7 * (week - 1))
            return Period(
                PeriodType.BI_WEEKLY, start, start + timedelta(days=13), f"{year}BiW{number}"
            )
        ptype = _WEEK_INFIX[infix]
        first_weekday = _WEEKLY[ptype][0]
        if year < 1 or not 1 <= number <= _weeks_in_year(year, first_weekday):
            return None
        start = _week1_start(year, first_weekday) + timedelta(days=7 * (number - 1))
        return Period(ptype, start, start + timedelta(days=6), f"{year}{infix}{number}")
    for ptype, rule, regex in _MONTH_RES:
        match = regex.fullmatch(text)
        if match is None:
            continue
        label_year = int(match.group(1))
        index = int(match.group(2)) if rule.per_cycle > 1 else 1
        if not 1 <= index <= rule.per_cycle:
            return None
        cycle_year = label_year - 1 if rule.end_year_label else label_year
        return _month_period(rule, ptype, cycle_year, index)
    return None
