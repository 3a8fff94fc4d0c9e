"""ISO period strings -> (period type, first day, last day), enough for the fake's checks.

Written apart from ``dhis2_lmis.dhis2.periods`` on purpose: the fake is the library's oracle, so
it works the dates out another way (week 1 found by scanning 29 December - 4 January, ISO weeks by
``date.fromisocalendar``) and a mistake in one is caught by tests against the other. Types that a
DHIS2 release does not have yet are not valid periods on it (``2027Feb`` before 2.43).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from dhis2_lmis.testing._version import FakeVersion

__all__ = ["period_range"]

# Financial years: id suffix -> (first month, labelled with the year the cycle ends).
_FINANCIAL = {
    "Feb": (2, False),
    "April": (4, False),
    "July": (7, False),
    "Aug": (8, False),
    "Sep": (9, False),
    "Oct": (10, False),
    "Nov": (11, True),
}
# Weekly types: id infix -> (type name, first weekday with Monday = 0).
_WEEKLY = {
    "W": ("Weekly", 0),
    "WedW": ("WeeklyWednesday", 2),
    "ThuW": ("WeeklyThursday", 3),
    "FriW": ("WeeklyFriday", 4),
    "SatW": ("WeeklySaturday", 5),
    "SunW": ("WeeklySunday", 6),
}
# Types a release line gained after 2.36: type name -> first (minor, patch) of each line.
_SINCE = {
    "QuarterlyNov": ((38, 4), (39, 3), (40, 0)),
    "FinancialSep": ((42, 0),),
    "WeeklyFriday": ((43, 0),),
    "FinancialFeb": ((43, 0),),
    "FinancialAug": ((43, 0),),
}
_TYPE_PATTERN = "|".join(_WEEKLY)


def _exists(type_name: str, version: FakeVersion | None) -> bool:
    firsts = _SINCE.get(type_name)
    if firsts is None or version is None:
        return True
    for minor, patch in firsts:
        if version.minor == minor:
            return version.at_least(minor, patch)
    return version.minor > firsts[-1][0]


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _span(year: int, month: int, months: int) -> tuple[dt.date, dt.date]:
    """The ``months`` whole months from ``month`` of ``year`` (month may be 0 or negative)."""
    index = year * 12 + (month - 1)
    end_index = index + months - 1
    return dt.date(index // 12, index % 12 + 1, 1), _month_end(end_index // 12, end_index % 12 + 1)


def _first_week_start(year: int, weekday: int) -> dt.date:
    """The day in 29 December - 4 January falling on ``weekday``: week 1 holds 4 January."""
    return next(
        day
        for day in (dt.date(year - 1, 12, 29) + dt.timedelta(days=n) for n in range(7))
        if day.weekday() == weekday
    )


def period_range(
    period: str, version: FakeVersion | None = None
) -> tuple[str, dt.date, dt.date] | None:
    """The period type name and the first and last day of ``period``, or None if invalid.

    With ``version``, a period of a type that release does not have is invalid too.
    """
    try:
        found = _parse(period.strip())
    except (ValueError, OverflowError):
        return None
    if found is None or not _exists(found[0], version):
        return None
    return found


def _parse(p: str) -> tuple[str, dt.date, dt.date] | None:
    if m := re.fullmatch(r"(\d{4})(\d{2})(\d{2})", p):
        day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        return "Daily", day, day
    if m := re.fullmatch(r"(\d{4})-?(\d{2})", p):
        first = dt.date(int(m[1]), int(m[2]), 1)  # refuses month 13
        return "Monthly", first, _month_end(first.year, first.month)
    if m := re.fullmatch(r"(\d{4})(\d{2})B", p):
        block = int(m[2])  # the two-month block's number, 01 = Jan-Feb ... 06 = Nov-Dec
        if not 1 <= block <= 6:
            return None
        start, end = _span(int(m[1]), 2 * block - 1, 2)
        return "BiMonthly", start, end
    if m := re.fullmatch(r"(\d{4})(Nov)?Q([1-4])", p):
        # QuarterlyNov Q1 is November-January, labelled with the year it ends
        offset = -2 if m[2] else 0
        start, end = _span(int(m[1]), 3 * int(m[3]) - 2 + offset, 3)
        return ("QuarterlyNov" if m[2] else "Quarterly"), start, end
    if m := re.fullmatch(r"(\d{4})(April|Nov)?S([12])", p):
        first_month = {None: 1, "April": 4, "Nov": -1}[m[2]]  # SixMonthlyNov S1: November before
        start, end = _span(int(m[1]), first_month + 6 * (int(m[3]) - 1), 6)
        return f"SixMonthly{m[2] or ''}", start, end
    if m := re.fullmatch(rf"(\d{{4}})({_TYPE_PATTERN})(\d{{1,2}})", p):
        name, weekday = _WEEKLY[m[2]]
        year, week = int(m[1]), int(m[3])
        start = _first_week_start(year, weekday) + dt.timedelta(weeks=week - 1)
        if week < 1 or start >= _first_week_start(year + 1, weekday):
            return None
        return name, start, start + dt.timedelta(days=6)
    if m := re.fullmatch(r"(\d{4})BiW(\d{1,2})", p):
        start_day = dt.date.fromisocalendar(int(m[1]), 2 * int(m[2]) - 1, 1)
        return "BiWeekly", start_day, start_day + dt.timedelta(days=13)
    if m := re.fullmatch(r"(\d{4})", p):
        return "Yearly", dt.date(int(m[1]), 1, 1), dt.date(int(m[1]), 12, 31)
    if m := re.fullmatch(r"(\d{4})(Feb|April|July|Aug|Sep|Oct|Nov)", p):
        month, end_labelled = _FINANCIAL[m[2]]
        start, end = _span(int(m[1]) - end_labelled, month, 12)
        return f"Financial{m[2]}", start, end
    return None
