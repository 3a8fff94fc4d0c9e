"""ISO period strings -> (period type, first day, last day), enough for the fake's checks."""

from __future__ import annotations

import calendar
import datetime as dt
import re

__all__ = ["period_range"]

_FINANCIAL = {"April": 4, "July": 7, "Oct": 10, "Nov": 11, "Sep": 9}


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _span(year: int, month: int, months: int) -> tuple[dt.date, dt.date]:
    end_year, end_month = _add_months(year, month, months - 1)
    return dt.date(year, month, 1), _month_end(end_year, end_month)


def period_range(period: str) -> tuple[str, dt.date, dt.date] | None:
    """The period type name and the first and last day of ``period``, or None if invalid."""
    try:
        return _parse(period.strip())
    except ValueError:
        return None


def _parse(p: str) -> tuple[str, dt.date, dt.date] | None:
    if m := re.fullmatch(r"(\d{4})(\d{2})(\d{2})", p):
        day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        return "Daily", day, day
    if m := re.fullmatch(r"(\d{4})-?(\d{2})", p):
        start, end = _span(int(m[1]), int(m[2]), 1)
        return "Monthly", start, end
    if m := re.fullmatch(r"(\d{4})(\d{2})B", p):
        start, end = _span(int(m[1]), int(m[2]), 2)
        return "BiMonthly", start, end
    if m := re.fullmatch(r"(\d{4})Q([1-4])", p):
        start, end = _span(int(m[1]), 3 * int(m[2]) - 2, 3)
        return "Quarterly", start, end
    if m := re.fullmatch(r"(\d{4})S([12])", p):
        start, end = _span(int(m[1]), 6 * int(m[2]) - 5, 6)
        return "SixMonthly", start, end
    if m := re.fullmatch(r"(\d{4})W(\d{1,2})", p):
        start_day = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        return "Weekly", start_day, start_day + dt.timedelta(days=6)
    if m := re.fullmatch(r"(\d{4})BiW(\d{1,2})", p):
        start_day = dt.date.fromisocalendar(int(m[1]), 2 * int(m[2]) - 1, 1)
        return "BiWeekly", start_day, start_day + dt.timedelta(days=13)
    if m := re.fullmatch(r"(\d{4})", p):
        return "Yearly", dt.date(int(m[1]), 1, 1), dt.date(int(m[1]), 12, 31)
    if m := re.fullmatch(r"(\d{4})(April|July|Oct|Nov|Sep)", p):
        year, month = int(m[1]), _FINANCIAL[m[2]]
        if m[2] == "Nov":
            year -= 1  # FinancialNov is labelled with the year it ends
        start, end = _span(year, month, 12)
        return f"Financial{m[2]}", start, end
    return None
