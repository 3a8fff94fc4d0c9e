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
  year their Nov–Oct cycle *ends*, while ``SixMonthlyApril`` and ``FinancialFeb``, ``April``,
  ``July``, ``Aug``, ``Sep`` and ``Oct`` use the year it *starts* (``2027Feb`` is 1 February 2027
  to 31 January 2028);
* some types are younger than DHIS2 2.36: ``FinancialSep`` came with 2.42, ``WeeklyFriday``,
  ``FinancialFeb`` and ``FinancialAug`` with 2.43 (:attr:`PeriodType.since`). A type newer than
  2.43 is refused with a :class:`PeriodError` that says so, rather than guessed at.

Only the ISO-8601 calendar is supported; DHIS2 instances on Ethiopian or Nepali calendars still
exchange ISO period ids, but their period boundaries differ.
"""

from __future__ import annotations

import calendar
import enum
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

import attrs

from dhis2_lmis.dhis2.versions import (
    NEWEST_KNOWN_TEXT,
    OLDEST_SUPPORTED_TEXT,
    ServerVersion,
    released_in,
)
from dhis2_lmis.errors import PeriodError

__all__ = [
    "Period",
    "PeriodError",
    "PeriodType",
    "format_period",
    "parse_period",
    "period_for",
    "period_type_named",
    "period_type_of_format",
]

log = logging.getLogger(__name__)


#: The newest DHIS2 release whose period types this module knows.
KNOWN_UP_TO = NEWEST_KNOWN_TEXT


class PeriodType(str, enum.Enum):
    """Every DHIS2 2.36-2.43 period type usable in data values; the value is DHIS2's name.

    ``TwoYearly`` is left out on purpose: DHIS2 gives it no ISO id, so no data value can use it.
    """

    DAILY = "Daily"
    WEEKLY = "Weekly"
    WEEKLY_WEDNESDAY = "WeeklyWednesday"
    WEEKLY_THURSDAY = "WeeklyThursday"
    WEEKLY_FRIDAY = "WeeklyFriday"
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
    FINANCIAL_FEB = "FinancialFeb"
    FINANCIAL_APRIL = "FinancialApril"
    FINANCIAL_JULY = "FinancialJuly"
    FINANCIAL_AUG = "FinancialAug"
    FINANCIAL_SEP = "FinancialSep"
    FINANCIAL_OCT = "FinancialOct"
    FINANCIAL_NOV = "FinancialNov"

    def __str__(self) -> str:
        return self.value

    @property
    def since(self) -> str | None:
        """The first DHIS2 release(s) with this type (``"2.43"``); None for every supported one."""
        firsts = _SINCE.get(self)
        if firsts is None:
            return None
        return " / ".join(
            f"2.{minor}.{patch}" if patch else f"2.{minor}" for minor, patch in firsts
        )

    def exists_in(self, version: ServerVersion) -> bool:
        """Whether a server of ``version`` has this period type (and accepts its ids)."""
        firsts = _SINCE.get(self)
        if firsts is None:
            return True
        return released_in(version, firsts)


# Period types younger than DHIS2 2.36: the first (minor, patch) of each release line that has
# them; the last entry holds for every later line (QuarterlyNov was back-ported to 2.38 and 2.39).
_SINCE: dict[PeriodType, tuple[tuple[int, int], ...]] = {
    PeriodType.QUARTERLY_NOV: ((38, 4), (39, 3), (40, 0)),
    PeriodType.FINANCIAL_SEP: ((42, 0),),
    PeriodType.WEEKLY_FRIDAY: ((43, 0),),
    PeriodType.FINANCIAL_FEB: ((43, 0),),
    PeriodType.FINANCIAL_AUG: ((43, 0),),
}


_ONE_DAY = timedelta(days=1)

# Weekly types: (first weekday, 0 = Monday; infix written between year and week number).
_WEEKLY: dict[PeriodType, tuple[int, str]] = {
    PeriodType.WEEKLY: (0, "W"),
    PeriodType.WEEKLY_WEDNESDAY: (2, "WedW"),
    PeriodType.WEEKLY_THURSDAY: (3, "ThuW"),
    PeriodType.WEEKLY_FRIDAY: (4, "FriW"),
    PeriodType.WEEKLY_SATURDAY: (5, "SatW"),
    PeriodType.WEEKLY_SUNDAY: (6, "SunW"),
}


@attrs.frozen
class _MonthRule:
    """A period type made of whole months inside a yearly cycle starting in ``first_month``.

    ``end_year_label`` is true for the November types, whose ids carry the year the cycle ends.
    ``label`` turns (label year, 1-based index of the period in the cycle) into the id;
    ``pattern`` reads it back (year, then index when there is more than one per cycle).
    ``unit`` names the index in messages; ``form`` is the id's shape for the list of forms.
    """

    first_month: int
    months: int
    end_year_label: bool
    label: Callable[[int, int], str]
    pattern: str
    unit: str
    form: str

    @property
    def per_cycle(self) -> int:
        return 12 // self.months


def _yearly(first_month: int, suffix: str, *, end_year_label: bool = False) -> _MonthRule:
    """A financial year starting in ``first_month``, written ``yyyy`` + ``suffix``."""
    return _MonthRule(
        first_month,
        12,
        end_year_label,
        lambda y, i: f"{y}{suffix}",
        rf"(\d{{4}}){suffix}",
        "year",
        f"yyyy{suffix}",
    )


_MONTHLY: dict[PeriodType, _MonthRule] = {
    PeriodType.MONTHLY: _MonthRule(
        1, 1, False, lambda y, i: f"{y}{i:02d}", r"(\d{4})-?(\d{2})", "month", "yyyyMM, yyyy-MM"
    ),
    PeriodType.BI_MONTHLY: _MonthRule(
        1,
        2,
        False,
        lambda y, i: f"{y}{i:02d}B",
        r"(\d{4})(\d{2})B",
        "bi-month",
        "yyyyMMB (MM = 01-06, 01 = Jan-Feb)",
    ),
    PeriodType.QUARTERLY: _MonthRule(
        1, 3, False, lambda y, i: f"{y}Q{i}", r"(\d{4})Q(\d+)", "quarter", "yyyyQn"
    ),
    PeriodType.QUARTERLY_NOV: _MonthRule(
        11, 3, True, lambda y, i: f"{y}NovQ{i}", r"(\d{4})NovQ(\d+)", "quarter", "yyyyNovQn"
    ),
    PeriodType.SIX_MONTHLY: _MonthRule(
        1, 6, False, lambda y, i: f"{y}S{i}", r"(\d{4})S(\d+)", "half-year", "yyyySn"
    ),
    PeriodType.SIX_MONTHLY_APRIL: _MonthRule(
        4, 6, False, lambda y, i: f"{y}AprilS{i}", r"(\d{4})AprilS(\d+)", "half-year", "yyyyAprilSn"
    ),
    PeriodType.SIX_MONTHLY_NOV: _MonthRule(
        11, 6, True, lambda y, i: f"{y}NovS{i}", r"(\d{4})NovS(\d+)", "half-year", "yyyyNovSn"
    ),
    PeriodType.YEARLY: _yearly(1, ""),
    PeriodType.FINANCIAL_FEB: _yearly(2, "Feb"),
    PeriodType.FINANCIAL_APRIL: _yearly(4, "April"),
    PeriodType.FINANCIAL_JULY: _yearly(7, "July"),
    PeriodType.FINANCIAL_AUG: _yearly(8, "Aug"),
    PeriodType.FINANCIAL_SEP: _yearly(9, "Sep"),
    PeriodType.FINANCIAL_OCT: _yearly(10, "Oct"),
    PeriodType.FINANCIAL_NOV: _yearly(11, "Nov", end_year_label=True),
}

_ACCEPTED_IDS = ", ".join(
    [
        "yyyyMMdd",
        "yyyy-MM-dd",
        *(f"yyyy{infix}n" for _, infix in _WEEKLY.values()),
        "yyyyBiWn",
        *(rule.form for rule in _MONTHLY.values()),
    ]
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


def period_type_named(name: str, *, server_version: ServerVersion | None = None) -> PeriodType:
    """Return the :class:`PeriodType` DHIS2 calls ``name`` (matched case-insensitively).

    Args:
        name: a ``periodType`` as in ``dataSet.periodType`` or ``lmis.period_format``.
        server_version: the server's version, named in the error when the type is unknown
            (a type DHIS2 added after 2.43 needs a newer dhis2-lmis).

    Raises:
        PeriodError: no DHIS2 2.36-2.43 period type has that name.
    """
    found = _TYPE_BY_LOWER_NAME.get(str(name).strip().lower())
    if found is not None:
        return found
    names = ", ".join(t.value for t in PeriodType)
    where = f" (this server runs DHIS2 {server_version})" if server_version is not None else ""
    raise PeriodError(
        f"unknown period type {name!r}{where}: dhis2-lmis knows the period types of DHIS2 "
        f"{OLDEST_SUPPORTED_TEXT} to {KNOWN_UP_TO} ({names}); a type DHIS2 added later needs "
        "a newer dhis2-lmis",
        value=str(name),
    )


def _coerce_type(period_type: PeriodType | str) -> PeriodType:
    if isinstance(period_type, PeriodType):
        return period_type
    return period_type_named(period_type)


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
_WEEK_INFIX = {infix: ptype for ptype, (_, infix) in _WEEKLY.items()}
_WEEK_RE = re.compile(rf"(\d{{4}})({'|'.join([*_WEEK_INFIX, 'BiW'])})(\d{{1,2}})", re.ASCII)
_MONTH_RES = [(ptype, rule, re.compile(rule.pattern, re.ASCII)) for ptype, rule in _MONTHLY.items()]
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _OutOfRange(ValueError):
    """A part of a well-formed id (month, week, quarter, ...) names one that does not exist."""


def parse_period(period_id: str) -> Period:
    """Parse any ISO period id DHIS2 accepts into a :class:`Period`.

    Accepts every form in :data:`PeriodType`'s table, plus the alternatives the server parses:
    ``W01`` as well as ``W1`` and ``yyyy-MM`` / ``yyyy-MM-dd``. The returned ``id`` is canonical,
    so ``parse_period("2024-03").id == "202403"``.

    Raises:
        PeriodError: the id matches no form (the message lists the forms), or it has a form but
            names a day, week, month or index that does not exist: the message says which
            (``2024-13``: "month 13 is out of range (01-12)").
    """
    if not isinstance(period_id, str):
        raise PeriodError(
            f"period id must be a string, got {type(period_id).__name__}",
            value=repr(period_id),
        )
    text = period_id.strip()
    try:
        parsed = _parse(text)
    except _OutOfRange as exc:
        raise PeriodError(f"period id {period_id!r}: {exc}", value=text) from exc
    except (ValueError, OverflowError) as exc:  # past date.max, e.g. 9999April ends in 10000
        raise PeriodError(
            f"period id {period_id!r} ends after 31 December 9999, the last supported day",
            value=text,
        ) from exc
    if parsed is None:
        raise PeriodError(
            f"unknown period id {period_id!r}; accepted forms: {_ACCEPTED_IDS}", value=text
        )
    return parsed


def _in_range(
    number: int, low: int, high: int, what: str, *, width: int = 1, within: str = ""
) -> None:
    if not low <= number <= high:
        bounds = f"{low:0{width}d}-{high:0{width}d}{within}"
        raise _OutOfRange(f"{what} {number:0{width}d} is out of range ({bounds})")


def _parse(text: str) -> Period | None:
    match = _DAILY_RE.fullmatch(text)
    if match:
        parts = match.groups()[:3] if match.group(1) else match.groups()[3:]
        year, month, day = (int(p) for p in parts)
        _in_range(year, 1, 9999, "year", width=4)
        _in_range(month, 1, 12, "month", width=2)
        days = calendar.monthrange(year, month)[1]
        if not 1 <= day <= days:
            raise _OutOfRange(
                f"day {day:02d} is out of range: {_MONTH_NAMES[month - 1]} {year} has {days} days"
            )
        return period_for(date(year, month, day), PeriodType.DAILY)
    match = _WEEK_RE.fullmatch(text)
    if match:
        year, infix, number = int(match.group(1)), match.group(2), int(match.group(3))
        _in_range(year, 1, 9998, "year", width=4)
        if infix == "BiW":
            weeks = _weeks_in_year(year, 0)
            _in_range(number, 1, (weeks + 1) // 2, "bi-week", within=f" in {year}")
            start = _week1_start(year, 0) + timedelta(days=7 * (number * 2 - 2))
            return Period(
                PeriodType.BI_WEEKLY, start, start + timedelta(days=13), f"{year}BiW{number}"
            )
        ptype = _WEEK_INFIX[infix]
        first_weekday = _WEEKLY[ptype][0]
        weeks = _weeks_in_year(year, first_weekday)
        _in_range(number, 1, weeks, f"{ptype.value} week", within=f" in {year}")
        start = _week1_start(year, first_weekday) + timedelta(days=7 * (number - 1))
        return Period(ptype, start, start + timedelta(days=6), f"{year}{infix}{number}")
    for ptype, rule, regex in _MONTH_RES:
        match = regex.fullmatch(text)
        if match is None:
            continue
        label_year = int(match.group(1))
        _in_range(label_year, 1, 9999, "year", width=4)
        index = int(match.group(2)) if rule.per_cycle > 1 else 1
        _in_range(index, 1, rule.per_cycle, rule.unit, width=2 if rule.months < 3 else 1)
        cycle_year = label_year - 1 if rule.end_year_label else label_year
        return _month_period(rule, ptype, cycle_year, index)
    return None
