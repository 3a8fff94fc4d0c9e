"""Frozen records of what DHIS2 sends: events, their data values and notes, problems, a check.

Records are shaped for the program, not the wire: snake_case, tuples, timezone-aware datetimes.
Only :mod:`dhis2_lmis.dhis2.convert` knows the JSON names they come from. A record that could
not be mapped completely still exists, with its ``problems`` filled: nothing is dropped silently.
The LMIS records built from these live in :mod:`dhis2_lmis.lmis.models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

from dhis2_lmis.dhis2 import _html

__all__ = [
    "ConnectionCheck",
    "DataValue",
    "Event",
    "EventStatus",
    "Note",
    "ProblemKind",
    "RecordProblem",
]

EventStatus = Literal["ACTIVE", "COMPLETED", "VISITED", "SCHEDULE", "OVERDUE", "SKIPPED"]
ProblemKind = Literal[
    "malformed",
    "unknown_item",
    "unknown_org_unit",
    "non_numeric",
    "negative",
    "missing_value",
    "missing_tracked_entity",
    "unknown_measure",
]


@attrs.frozen
class RecordProblem:
    """Why (part of) a record could not be mapped.

    Attributes:
        kind: a stable machine-readable category.
        message: a sentence naming the reference and where it was looked for.
        reference: the offending value (a data element, org unit, item code), when there is one.
    """

    kind: ProblemKind
    message: str
    reference: str | None = None

    def __str__(self) -> str:
        return self.message


@attrs.frozen
class DataValue:
    """One data value of an event; ``value`` is the string DHIS2 sent (it always sends strings)."""

    data_element: str
    value: str | None
    provided_elsewhere: bool = False
    stored_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen
class Note:
    """A free-text note attached to an event."""

    value: str
    stored_by: str | None = None
    stored_at: datetime | None = None


@attrs.frozen
class Event:
    """A DHIS2 event, read from ``/api/tracker/events`` or the legacy ``/api/events``.

    Timestamps are timezone-aware in the server's ``serverTimeZoneId`` when it is known.
    """

    uid: str
    program: str | None = None
    program_stage: str | None = None
    org_unit: str | None = None
    status: str | None = None
    occurred_at: datetime | None = None
    scheduled_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    stored_by: str | None = None
    attribute_option_combo: str | None = None
    enrollment: str | None = None
    tracked_entity: str | None = None
    deleted: bool = False
    data_values: tuple[DataValue, ...] = ()
    notes: tuple[Note, ...] = ()
    problems: tuple[RecordProblem, ...] = ()

    def value(self, data_element: str) -> str | None:
        """The value of ``data_element`` (as DHIS2 sent it), or None when absent."""
        for data_value in self.data_values:
            if data_value.data_element == data_element:
                return data_value.value
        return None

    def values(self) -> dict[str, str | None]:
        """All data values keyed by data element."""
        return {dv.data_element: dv.value for dv in self.data_values}

    def recency(self) -> tuple[datetime, datetime]:
        """Sort key for "latest": event date, then creation time, as the Android stock app
        orders a stock card. Both timestamps come from one server, so offsets are dropped."""
        return _naive(self.occurred_at), _naive(self.created_at)

    def __repr__(self) -> str:
        extra = " deleted" if self.deleted else ""
        extra += f" problems={len(self.problems)}" if self.problems else ""
        return (
            f"<Event {self.uid} {self.status or '?'} org_unit={self.org_unit or '?'} "
            f"updated_at={_html.when(self.updated_at)} values={len(self.data_values)}{extra}>"
        )

    def _repr_html_(self) -> str:
        head = _html.key_value_table(
            (
                ("event", self.uid),
                ("program", self.program),
                ("program stage", self.program_stage),
                ("org unit", self.org_unit),
                ("status", self.status),
                ("occurred at", _html.when(self.occurred_at)),
                ("updated at", _html.when(self.updated_at)),
                ("completed at", _html.when(self.completed_at)),
                ("deleted", "yes" if self.deleted else "no"),
            )
        )
        values = _html.table(
            ("data element", "value"), ((dv.data_element, dv.value) for dv in self.data_values)
        )
        return head + values + _html.ordered_list(self.problems)


def _naive(value: datetime | None) -> datetime:
    if value is None:
        return datetime.min
    return value.replace(tzinfo=None)


@attrs.frozen
class ConnectionCheck:
    """The answer of "Test connection": never an exception, always a sentence.

    Attributes:
        ok: True when DHIS2 answered and accepted the credentials.
        message: "Connection successful (...)", "Authentication failed: ...",
            "Could not connect: ...", or "DHIS2 integration is disabled".
        server_version: the DHIS2 version, when it answered.
        checked_at: when the check ran (timezone-aware UTC).
        user: the DHIS2 username the credentials belong to, when known.
    """

    ok: bool
    message: str
    server_version: str | None
    checked_at: datetime
    user: str | None = None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        state = "ok" if self.ok else "failed"
        return f"<ConnectionCheck {state}: {self.message} checked_at={_html.when(self.checked_at)}>"

    def _repr_html_(self) -> str:
        return _html.key_value_table(
            (
                ("connection", "ok" if self.ok else "failed"),
                ("message", self.message),
                ("DHIS2 version", self.server_version),
                ("user", self.user),
                ("checked at", _html.when(self.checked_at)),
            )
        )
