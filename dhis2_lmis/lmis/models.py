"""Frozen records: what DHIS2 events are, and what the LMIS flows make of them.

Records are shaped for the program, not the wire: snake_case, tuples, timezone-aware datetimes,
``Decimal`` quantities. Only :mod:`dhis2_lmis.dhis2.convert` knows the JSON names they come from.
A record that could not be mapped completely still exists, with its ``problems`` filled:
nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import attrs

from dhis2_lmis.dhis2 import _html

if TYPE_CHECKING:  # pragma: no cover - annotations only; references sits above models
    from dhis2_lmis.lmis.references import Customer, Item, Store

__all__ = [
    "ConnectionCheck",
    "ConsignmentReceipt",
    "DataValue",
    "Event",
    "EventStatus",
    "Note",
    "ProblemKind",
    "RecordProblem",
    "Requisition",
    "RequisitionLine",
    "StockLevel",
    "StockReport",
    "StockReportLine",
    "StockTransaction",
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
class RequisitionLine:
    """One ordered item: the data element, the resolved item (None when unmapped), the quantity."""

    data_element: str
    item: Item | None
    quantity: Decimal | None
    raw_value: str | None


@attrs.frozen
class Requisition:
    """A completed Order-program event read as a customer requisition."""

    event: Event
    program: str | None
    org_unit: str | None
    store: Store | None
    customer: Customer | None
    occurred_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime | None
    lines: tuple[RequisitionLine, ...]
    other_values: Mapping[str, str | None]
    problems: tuple[RecordProblem, ...]
    source: str

    def __repr__(self) -> str:
        return (
            f"<Requisition {self.event.uid} {_html.place(self.org_unit, self.customer, self.store)}"
            f" completed_at={_html.when(self.completed_at)} lines={len(self.lines)}"
            f" problems={len(self.problems)}>"
        )

    def _repr_html_(self) -> str:
        head = _html.key_value_table(
            (
                ("requisition", self.event.uid),
                ("facility", _html.place(self.org_unit, self.customer, self.store)),
                ("org unit", self.org_unit),
                ("completed at", _html.when(self.completed_at)),
                ("lines", len(self.lines)),
                ("problems", len(self.problems)),
            )
        )
        lines = _html.table(
            ("data element", "item", "name", "quantity"),
            (
                (
                    line.data_element,
                    line.item.code if line.item else None,
                    line.item.name if line.item else None,
                    line.raw_value if line.quantity is None else _html.number(line.quantity),
                )
                for line in self.lines
            ),
        )
        return head + lines + _html.ordered_list(self.problems)


@attrs.frozen
class ConsignmentReceipt:
    """A completed Receipt-program event: the facility acknowledged a consignment."""

    event: Event
    org_unit: str | None
    store: Store | None
    customer: Customer | None
    consignment_number: str | None
    completed_at: datetime | None
    updated_at: datetime | None
    values: Mapping[str, str | None]
    problems: tuple[RecordProblem, ...]
    source: str

    def __repr__(self) -> str:
        return (
            f"<ConsignmentReceipt {self.consignment_number or '?'}"
            f" {_html.place(self.org_unit, self.customer, self.store)}"
            f" completed_at={_html.when(self.completed_at)} problems={len(self.problems)}>"
        )

    def _repr_html_(self) -> str:
        head = _html.key_value_table(
            (
                ("consignment", self.consignment_number),
                ("facility", _html.place(self.org_unit, self.customer, self.store)),
                ("event", self.event.uid),
                ("completed at", _html.when(self.completed_at)),
                ("problems", len(self.problems)),
            )
        )
        return head + _html.ordered_list(self.problems)


@attrs.frozen
class StockTransaction:
    """An event of the STR (Real-Time Stock) tracker program for one item at one facility."""

    event: Event
    org_unit: str | None
    tracked_entity: str | None
    enrollment: str | None
    item_code: str | None
    occurred_at: datetime | None
    stock_on_hand: Decimal | None
    received_quantity: Decimal | None
    values: Mapping[str, str | None]
    problems: tuple[RecordProblem, ...]
    source: str

    def __repr__(self) -> str:
        received = ""
        if self.received_quantity is not None:
            received = f" received={_html.number(self.received_quantity)}"
        return (
            f"<StockTransaction {self.event.uid} {self.item_code or '?'}"
            f" at {self.org_unit or '?'} occurred_at={_html.when(self.occurred_at)}"
            f" stock_on_hand={_html.number(self.stock_on_hand)}{received}"
            f" problems={len(self.problems)}>"
        )

    def _repr_html_(self) -> str:
        head = _html.key_value_table(
            (
                ("event", self.event.uid),
                ("item", self.item_code),
                ("org unit", self.org_unit),
                ("occurred at", _html.when(self.occurred_at)),
                ("stock on hand", _html.number(self.stock_on_hand)),
                ("received", _html.number(self.received_quantity)),
                ("problems", len(self.problems)),
            )
        )
        return head + _html.ordered_list(self.problems)


@attrs.frozen
class StockLevel:
    """The latest stock on hand of one item at one facility ("RTS SOH raw data")."""

    org_unit: str
    item_code: str | None
    stock_on_hand: Decimal | None
    as_of: datetime | None
    event: Event

    def __repr__(self) -> str:
        return (
            f"<StockLevel {self.item_code or '?'} at {self.org_unit}:"
            f" {_html.number(self.stock_on_hand)} as_of={_html.when(self.as_of)}>"
        )

    def _repr_html_(self) -> str:
        return _html.key_value_table(
            (
                ("org unit", self.org_unit),
                ("item", self.item_code),
                ("stock on hand", _html.number(self.stock_on_hand)),
                ("as of", _html.when(self.as_of)),
                ("event", self.event.uid),
            )
        )


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


@attrs.frozen
class StockReportLine:
    """One value of a stock-on-hand report: a data element and category option combo.

    Attributes:
        data_element: the data element as DHIS2 sent it (in ``dataElementIdScheme``).
        category_option_combo: the category option combo (the measure in the "item data
            element x measure combo" layout), in ``categoryOptionComboIdScheme``.
        item: the mSupply item of the data element; None when unmapped or no items were given.
        value: the quantity; None when the value is missing or not a number.
        raw_value: the text DHIS2 sent.
        updated_at: when the value was last updated on the server.
        measure: under a ``[data_set]`` layout, the configured measure name
            (``stock_on_hand``); None without a layout or when the value matches no measure.
        attribute_option_combo: the attribute option combo (a funding source, say) as DHIS2
            sent it, a UID; two values that differ only by it are two lines. DHIS2 names its
            default combo too (``HllvX50cXC0`` on most servers); None when the answer named
            none, which DHIS2 reads as the default.
    """

    data_element: str
    category_option_combo: str | None
    item: Item | None
    value: Decimal | None
    raw_value: str | None
    updated_at: datetime | None = None
    measure: str | None = None
    attribute_option_combo: str | None = None


@attrs.frozen
class StockReport:
    """The values of the stock data set for one facility and one period.

    Attributes:
        org_unit: the org unit as DHIS2 sent it (in ``orgUnitIdScheme``).
        customer: the mSupply customer mapped to the org unit, if any.
        store: the mSupply store mapped to the org unit, if any.
        period: the ISO period id (``202611``).
        complete_date: when the data set was marked complete; known only when DHIS2 reports
            it, which it does for a request naming one org unit and one period.
        lines: one line per data value, in the order DHIS2 sent them.
        problems: unknown items or org unit, values that are not quantities.
    """

    org_unit: str
    customer: Customer | None
    store: Store | None
    period: str
    complete_date: date | None
    lines: tuple[StockReportLine, ...]
    problems: tuple[RecordProblem, ...] = ()

    def __repr__(self) -> str:
        return (
            f"<StockReport {self.period} {_html.place(self.org_unit, self.customer, self.store)}"
            f" lines={len(self.lines)} problems={len(self.problems)}>"
        )

    def _repr_html_(self) -> str:
        head = _html.key_value_table(
            (
                ("period", self.period),
                ("facility", _html.place(self.org_unit, self.customer, self.store)),
                ("org unit", self.org_unit),
                ("complete date", _html.when(self.complete_date)),
                ("lines", len(self.lines)),
                ("problems", len(self.problems)),
            )
        )
        lines = _html.table(
            ("data element", "category option combo", "attribute option combo", "item", "value"),
            (
                (
                    line.data_element,
                    line.category_option_combo,
                    line.attribute_option_combo,
                    line.item.code if line.item else None,
                    line.raw_value if line.value is None else _html.number(line.value),
                )
                for line in self.lines
            ),
        )
        return head + lines + _html.ordered_list(self.problems)
