"""The columns of each record type, defined once for ``dhis2-lmis`` output and ``to_dataframe``.

A :class:`Table` says how one record type becomes rows: which rows a record spans (one per
requisition line, report line or event data value; one for a record without any, so nothing
is dropped) and, per column, its name, its :data:`ColumnType` and the getter of its value.
The CLI prints the values as text (table, CSV, JSON lines); :mod:`frames` types them for
pandas. Both read the same :data:`TABLES`, so a column added here shows up in both, with the
same name, and ``pull order --format csv`` has the header of ``to_dataframe(requisitions)``.

Values stay Python objects here (``Decimal``, ``datetime``, ``None``): how they look is the
caller's business. Nothing in this module imports pandas.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from dhis2_lmis.dhis2.imports import ImportConflict
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    DataValue,
    Event,
    RecordProblem,
    Requisition,
    RequisitionLine,
    StockLevel,
    StockReport,
    StockReportLine,
    StockTransaction,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from dhis2_lmis.lmis.references import Customer, Item, Store

#: The ``kind=`` names of :func:`~dhis2_lmis.run.frames.to_dataframe`, one per record type.
RecordKind = Literal[
    "events",
    "requisitions",
    "receipts",
    "stock_transactions",
    "stock_levels",
    "stock_reports",
    "conflicts",
]
#: How a column is typed in a DataFrame: ``string``, tz-aware ``datetime``, ``date`` (naive
#: datetime64), ``number`` (nullable Float64), ``int`` (nullable Int64), ``bool`` (nullable
#: boolean).
ColumnType = Literal["string", "datetime", "date", "number", "int", "bool"]

_R = TypeVar("_R")  # the record
_L = TypeVar("_L")  # one of its lines (what one row is about); None for a one-row record


@dataclass(frozen=True)
class Column(Generic[_R, _L]):
    """One column: its name, its type, and its value for a record and one of its lines."""

    name: str
    type: ColumnType
    get: Callable[[_R, _L | None], object]


@dataclass(frozen=True)
class Table(Generic[_R, _L]):
    """How records of one type become rows: one per line (``lines``), or one per record."""

    record_type: type[_R]
    columns: tuple[Column[_R, _L], ...]
    lines: Callable[[_R], Sequence[_L]] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def lines_of(self, record: _R) -> Sequence[_L | None]:
        """The lines a record spans; ``(None,)`` when it has none, so it still gets a row."""
        lines = self.lines(record) if self.lines is not None else ()
        return lines or (None,)

    def row(self, record: _R, line: _L | None) -> tuple[object, ...]:
        return tuple(column.get(record, line) for column in self.columns)

    def rows(self, record: _R) -> Iterator[tuple[object, ...]]:
        """The record's rows, each a value per column of :attr:`columns`."""
        for line in self.lines_of(record):
            yield self.row(record, line)


# -- shared values ----------------------------------------------------------------------------


def problems_text(problems: Sequence[RecordProblem]) -> str | None:
    """The record's problems joined into one text; None when there are none."""
    return "; ".join(str(p) for p in problems) if problems else None


def number(value: object) -> Decimal | None:
    """A finite number from a Decimal or a DHIS2 value string; None for anything else."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str) and value.strip():
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def _code(thing: Item | Customer | Store | None) -> str | None:
    return thing.code if thing is not None else None


def _name(thing: Item | Customer | Store | None) -> str | None:
    return thing.name if thing is not None else None


def _place() -> tuple[Column[Any, Any], ...]:
    """customer_code, customer_name, store_code, store_name: the facility, when resolved."""
    return (
        Column("customer_code", "string", lambda r, _: _code(r.customer)),
        Column("customer_name", "string", lambda r, _: _name(r.customer)),
        Column("store_code", "string", lambda r, _: _code(r.store)),
        Column("store_name", "string", lambda r, _: _name(r.store)),
    )


# -- the tables -------------------------------------------------------------------------------

_EventColumn = Column[Event, DataValue]
EVENT_HEAD: tuple[_EventColumn, ...] = (
    _EventColumn("event", "string", lambda e, _: e.uid),
    _EventColumn("program", "string", lambda e, _: e.program),
    _EventColumn("program_stage", "string", lambda e, _: e.program_stage),
    _EventColumn("org_unit", "string", lambda e, _: e.org_unit),
    _EventColumn("status", "string", lambda e, _: e.status),
    _EventColumn("occurred_at", "datetime", lambda e, _: e.occurred_at),
    _EventColumn("scheduled_at", "datetime", lambda e, _: e.scheduled_at),
    _EventColumn("created_at", "datetime", lambda e, _: e.created_at),
    _EventColumn("updated_at", "datetime", lambda e, _: e.updated_at),
    _EventColumn("completed_at", "datetime", lambda e, _: e.completed_at),
    _EventColumn("completed_by", "string", lambda e, _: e.completed_by),
    _EventColumn("stored_by", "string", lambda e, _: e.stored_by),
    _EventColumn("attribute_option_combo", "string", lambda e, _: e.attribute_option_combo),
    _EventColumn("enrollment", "string", lambda e, _: e.enrollment),
    _EventColumn("tracked_entity", "string", lambda e, _: e.tracked_entity),
    _EventColumn("deleted", "bool", lambda e, _: e.deleted),
    _EventColumn("problems", "string", lambda e, _: problems_text(e.problems)),
)
"""An event's own columns: the rows of ``to_dataframe(events, wide=True)`` start with them."""

EVENTS: Table[Event, DataValue] = Table(
    Event,
    (
        *EVENT_HEAD,
        _EventColumn("data_element", "string", lambda _, dv: dv and dv.data_element),
        _EventColumn("value", "string", lambda _, dv: dv and dv.value),
        _EventColumn("numeric_value", "number", lambda _, dv: dv and number(dv.value)),
        _EventColumn("value_updated_at", "datetime", lambda _, dv: dv and dv.updated_at),
    ),
    lambda e: e.data_values,
)

_RequisitionColumn = Column[Requisition, RequisitionLine]
REQUISITIONS: Table[Requisition, RequisitionLine] = Table(
    Requisition,
    (
        _RequisitionColumn("event", "string", lambda r, _: r.event.uid),
        _RequisitionColumn("org_unit", "string", lambda r, _: r.org_unit),
        *_place(),
        _RequisitionColumn("occurred_at", "datetime", lambda r, _: r.occurred_at),
        _RequisitionColumn("completed_at", "datetime", lambda r, _: r.completed_at),
        _RequisitionColumn("updated_at", "datetime", lambda r, _: r.updated_at),
        _RequisitionColumn("data_element", "string", lambda _, line: line and line.data_element),
        _RequisitionColumn("item_code", "string", lambda _, line: line and _code(line.item)),
        _RequisitionColumn("item_name", "string", lambda _, line: line and _name(line.item)),
        _RequisitionColumn("quantity", "number", lambda _, line: line and line.quantity),
        _RequisitionColumn("raw_value", "string", lambda _, line: line and line.raw_value),
        _RequisitionColumn("problems", "string", lambda r, _: problems_text(r.problems)),
        _RequisitionColumn("source", "string", lambda r, _: r.source),
    ),
    lambda r: r.lines,
)

_ReceiptColumn = Column[ConsignmentReceipt, None]
RECEIPTS: Table[ConsignmentReceipt, None] = Table(
    ConsignmentReceipt,
    (
        _ReceiptColumn("event", "string", lambda r, _: r.event.uid),
        _ReceiptColumn("org_unit", "string", lambda r, _: r.org_unit),
        *_place(),
        _ReceiptColumn("consignment_number", "string", lambda r, _: r.consignment_number),
        _ReceiptColumn("completed_at", "datetime", lambda r, _: r.completed_at),
        _ReceiptColumn("updated_at", "datetime", lambda r, _: r.updated_at),
        # the event's data values as one JSON object: what else the facility recorded
        _ReceiptColumn("values", "string", lambda r, _: json.dumps(dict(r.values), sort_keys=True)),
        _ReceiptColumn("problems", "string", lambda r, _: problems_text(r.problems)),
        _ReceiptColumn("source", "string", lambda r, _: r.source),
    ),
)

_TransactionColumn = Column[StockTransaction, None]
STOCK_TRANSACTIONS: Table[StockTransaction, None] = Table(
    StockTransaction,
    (
        _TransactionColumn("event", "string", lambda t, _: t.event.uid),
        _TransactionColumn("org_unit", "string", lambda t, _: t.org_unit),
        _TransactionColumn("tracked_entity", "string", lambda t, _: t.tracked_entity),
        _TransactionColumn("enrollment", "string", lambda t, _: t.enrollment),
        _TransactionColumn("item_code", "string", lambda t, _: t.item_code),
        _TransactionColumn("status", "string", lambda t, _: t.event.status),
        _TransactionColumn("deleted", "bool", lambda t, _: t.event.deleted),
        _TransactionColumn("occurred_at", "datetime", lambda t, _: t.occurred_at),
        _TransactionColumn("stock_on_hand", "number", lambda t, _: t.stock_on_hand),
        _TransactionColumn("received_quantity", "number", lambda t, _: t.received_quantity),
        _TransactionColumn("problems", "string", lambda t, _: problems_text(t.problems)),
        _TransactionColumn("source", "string", lambda t, _: t.source),
    ),
)

_LevelColumn = Column[StockLevel, None]
STOCK_LEVELS: Table[StockLevel, None] = Table(
    StockLevel,
    (
        _LevelColumn("org_unit", "string", lambda s, _: s.org_unit),
        _LevelColumn("item_code", "string", lambda s, _: s.item_code),
        _LevelColumn("stock_on_hand", "number", lambda s, _: s.stock_on_hand),
        _LevelColumn("as_of", "datetime", lambda s, _: s.as_of),
        _LevelColumn("event", "string", lambda s, _: s.event.uid),
    ),
)

_ReportColumn = Column[StockReport, StockReportLine]
STOCK_REPORTS: Table[StockReport, StockReportLine] = Table(
    StockReport,
    (
        _ReportColumn("org_unit", "string", lambda r, _: r.org_unit),
        *_place(),
        _ReportColumn("period", "string", lambda r, _: r.period),
        _ReportColumn("complete_date", "date", lambda r, _: r.complete_date),
        _ReportColumn("data_element", "string", lambda _, line: line and line.data_element),
        _ReportColumn(
            "category_option_combo", "string", lambda _, line: line and line.category_option_combo
        ),
        _ReportColumn(
            "attribute_option_combo",
            "string",
            lambda _, line: line and line.attribute_option_combo,
        ),
        _ReportColumn("item_code", "string", lambda _, line: line and _code(line.item)),
        _ReportColumn("item_name", "string", lambda _, line: line and _name(line.item)),
        _ReportColumn("measure", "string", lambda _, line: line and line.measure),
        _ReportColumn("value", "number", lambda _, line: line and line.value),
        _ReportColumn("raw_value", "string", lambda _, line: line and line.raw_value),
        _ReportColumn("updated_at", "datetime", lambda _, line: line and line.updated_at),
        _ReportColumn("problems", "string", lambda r, _: problems_text(r.problems)),
    ),
    lambda r: r.lines,
)

#: A conflict's line: one refused row, its index into the pushed values and a copy of it.
ConflictLine = tuple[int | None, Mapping[str, object] | None]
_ConflictColumn = Column[ImportConflict, ConflictLine]
CONFLICTS: Table[ImportConflict, ConflictLine] = Table(
    ImportConflict,
    (
        _ConflictColumn("index", "int", lambda _, line: line and line[0]),
        _ConflictColumn("error_code", "string", lambda c, _: c.error_code),
        _ConflictColumn("property", "string", lambda c, _: c.property),
        _ConflictColumn("object", "string", lambda c, _: c.object),
        _ConflictColumn("message", "string", lambda c, _: c.value),
    ),
    lambda c: list(itertools.zip_longest(c.indexes, c.data_values)),
)
"""An import's refused rows; :mod:`frames` adds a column per field of the copied rows."""

#: Every table, by the ``kind=`` name of its record type.
TABLES: Mapping[RecordKind, Table[Any, Any]] = {
    "events": EVENTS,
    "requisitions": REQUISITIONS,
    "receipts": RECEIPTS,
    "stock_transactions": STOCK_TRANSACTIONS,
    "stock_levels": STOCK_LEVELS,
    "stock_reports": STOCK_REPORTS,
    "conflicts": CONFLICTS,
}
