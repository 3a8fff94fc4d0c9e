"""Tracker endpoints, the pieces both sides share: request errors, value checks, times, id schemes.

The read side (events, tracked entities, enrollments, new and legacy) is ``_tracker_read``; the
import side (``POST /api/tracker``, jobs, legacy ``POST /api/events``) is ``_tracker_import``.
``_aggregate`` uses the value checks and time parsing here too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dhis2_lmis.testing._host import Host
from dhis2_lmis.testing._server import Request, Response, web_message
from dhis2_lmis.testing._world import (
    User,
)

__all__ = [
    "BadRequest",
    "Schemes",
    "guard",
    "is_numeric_type",
    "numeric_problem",
    "parse_when",
    "split_values",
]

Json = dict[str, Any]

NUMERIC_TYPES = {
    "INTEGER",
    "INTEGER_POSITIVE",
    "INTEGER_NEGATIVE",
    "INTEGER_ZERO_OR_POSITIVE",
    "NUMBER",
    "PERCENTAGE",
    "UNIT_INTERVAL",
}


class BadRequest(Exception):
    """Raised inside handlers; becomes a WebMessage with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def guard(
    fn: Callable[[Host, Request, re.Match[str], User | None], Response],
) -> Callable[[Host, Request, re.Match[str], User | None], Response]:
    """Wrap a handler so a ``BadRequest`` it raises becomes the WebMessage DHIS2 would send."""

    def wrapped(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
        try:
            return fn(fake, req, m, user)
        except BadRequest as exc:
            return web_message(exc.status, str(exc))

    wrapped.__doc__ = fn.__doc__
    return wrapped


def is_numeric_type(value_type: str) -> bool:
    """True for DHIS2's numeric value types."""
    return value_type in NUMERIC_TYPES


def numeric_problem(value_type: str, value: str) -> str | None:
    """DHIS2's reason key when ``value`` does not fit the numeric ``value_type``."""
    if value_type not in NUMERIC_TYPES:
        return None
    try:
        number = float(value)
    except ValueError:
        return "value_not_numeric"
    if value_type.startswith("INTEGER"):
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            return "value_not_integer"
        if value_type == "INTEGER_POSITIVE" and number <= 0:
            return "value_not_positive_integer"
        if value_type == "INTEGER_NEGATIVE" and number >= 0:
            return "value_not_negative_integer"
        if value_type == "INTEGER_ZERO_OR_POSITIVE" and number < 0:
            return "value_not_zero_or_positive_integer"
    if value_type == "PERCENTAGE" and not 0 <= number <= 100:
        return "value_not_percentage"
    if value_type == "UNIT_INTERVAL" and not 0 <= number <= 1:
        return "value_not_unit_interval"
    return None


def parse_when(fake: Host, text: str, *, end_of_day: bool = False) -> dt.datetime:
    """Parse a DHIS2 date or date-time into a naive server-local datetime.

    Raises:
        BadRequest: not a date.
    """
    raw = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = dt.datetime.fromisoformat(raw)
            return (
                day.replace(hour=23, minute=59, second=59, microsecond=999000)
                if end_of_day
                else day
            )
        iso = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
        iso = re.sub(r" (\d{2}:?\d{2})$", r"+\1", iso)  # a "+" decoded as a space in a query
        value = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise BadRequest(f"Invalid date format: {text}") from None
    if value.tzinfo is not None:
        value = value.astimezone(fake.tz).replace(tzinfo=None)
    return value


def split_values(values: Sequence[str], sep: str) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(p.strip() for p in value.split(sep) if p.strip())
    return out


@dataclass
class Schemes:
    """The id schemes a request asks for (``idScheme`` and the per-object overrides)."""

    data_element: str = "UID"
    org_unit: str = "UID"
    program: str = "UID"
    program_stage: str = "UID"

    @classmethod
    def from_request(cls, req: Request) -> Schemes:
        general = (req.param("idScheme") or "UID").upper()
        return cls(
            (req.param("dataElementIdScheme") or general).upper(),
            (req.param("orgUnitIdScheme") or general).upper(),
            (req.param("programIdScheme") or general).upper(),
            (req.param("programStageIdScheme") or general).upper(),
        )
