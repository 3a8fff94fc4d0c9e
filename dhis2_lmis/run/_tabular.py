"""The columns of each record type, defined once for ``dhis2-lmis`` output and ``to_dataframe``.

A :class:`Table` says how one record type becomes rows: which rows a record spans (one per
requisition line, report line or event data value; one for a record without any, so nothing
is dropped) and, per column, its name, its :data:`ColumnType` and the getter of its value,
read from the record (:class:`Column`) or from one of its lines (:class:`LineColumn`).
The CLI prints the values as text (table, CSV, JSON lines); :mod:`frames` types them for
pandas. Both read the tables below, so a column added here shows up in both, with the
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
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from dhis2_lmis.dhis2.imports import ImportConflict
from dhis2_lmis.dhis2.records import DataValue, Event, RecordProblem
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Requisition,
    RequisitionLine,
    StockLevel,
    StockReport,
    StockReportLine,
    StockTransaction,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from dhis2_lmis.lmis.models import Customer, Item, Store

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
_L = TypeVar("_L")  # one of its lines: what one row is about, when a record spans several


@dataclass(frozen=True)
class Column(Generic[_R]):
    """A column of the record itself: the same value in each of the record's rows."""

    name: str
    type: ColumnType
    get: Callable[[_R], object]


@dataclass(frozen=True)
class LineColumn(Generic[_L]):
    """A column of one line of the record; empty (None) in the row of a record without lines."""

    name: str
    type: ColumnType
    get: Callable[[_L], object]


@dataclass(frozen=True)
class Table(Generic[_R, _L]):
    """How records of one type become rows: one per line (``lines``), or one per record."""

    record_type: type[_R]
    columns: tuple[Column[_R] | LineColumn[_L], ...]
    lines: Callable[[_R], Sequence[_L]] | None = None

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The column names, in order (asked for every record a command writes)."""
        return tuple(column.name for column in self.columns)

    def lines_of(self, record: _R) -> Sequence[_L | None]:
        """The lines a record spans; ``(None,)`` when it has none, so it still gets a row."""
        lines = self.lines(record) if self.lines is not None else ()
        return lines or (None,)

    def rows(self, record: _R) -> Iterator[tuple[object, ...]]:
        """The record's rows, one per :meth:`lines_of`, each a value per column.

        The record's own values are read once per record, not once per line: a frame of
        100,000 event data values reads each event's 17 fields once, not five times.
        """
        head: list[object] = [None] * len(self.columns)
        for n, get in self._record_getters:
            head[n] = get(record)
        for line in self.lines_of(record):
            if line is None:
                yield tuple(head)
                continue
            row = head.copy()
            for n, get_from_line in self._line_getters:
                row[n] = get_from_line(line)
            yield tuple(row)

    @cached_property
    def _record_getters(self) -> list[tuple[int, Callable[[_R], object]]]:
        return [(n, c.get) for n, c in enumerate(self.columns) if isinstance(c, Column)]

    @cached_property
    def _line_getters(self) -> list[tuple[int, Callable[[_L], object]]]:
        return [(n, c.get) for n, c in enumerate(self.columns) if isinstance(c, LineColumn)]


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


def _place() -> tuple[Column[Any], ...]:
    """customer_code, customer_name, store_code, store_name: the facility, when resolved."""
    return (
        Column("customer_code", "string", lambda r: _code(r.customer)),
        Column("customer_name", "string", lambda r: _name(r.customer)),
        Column("store_code", "string", lambda r: _code(r.store)),
        Column("store_name", "string", lambda r: _name(r.store)),
    )


# -- the tables -------------------------------------------------------------------------------

_EventColumn = Column[Event]
EVENT_HEAD: tuple[_EventColumn, ...] = (
    _EventColumn("event", "string", lambda e: e.uid),
    _EventColumn("program", "string", lambda e: e.program),
    _EventColumn("program_stage", "string", lambda e: e.program_stage),
    _EventColumn("org_unit", "string", lambda e: e.org_unit),
    _EventColumn("status", "string", lambda e: e.status),
    _EventColumn("occurred_at", "datetime", lambda e: e.occurred_at),
    _EventColumn("scheduled_at", "datetime", lambda e: e.scheduled_at),
    _EventColumn("created_at", "datetime", lambda e: e.created_at),
    _EventColumn("updated_at", "datetime", lambda e: e.updated_at),
    _EventColumn("completed_at", "datetime", lambda e: e.completed_at),
    _EventColumn("completed_by", "string", lambda e: e.completed_by),
    _EventColumn("stored_by", "string", lambda e: e.stored_by),
    _EventColumn("attribute_option_combo", "string", lambda e: e.attribute_option_combo),
    _EventColumn("enrollment", "string", lambda e: e.enrollment),
    _EventColumn("tracked_entity", "string", lambda e: e.tracked_entity),
    _EventColumn("deleted", "bool", lambda e: e.deleted),
    _EventColumn("problems", "string", lambda e: problems_text(e.problems)),
)
"""An event's own columns: the rows of ``to_dataframe(events, wide=True)`` start with them."""

_ValueColumn = LineColumn[DataValue]
EVENTS: Table[Event, DataValue] = Table(
    Event,
    (
        *EVENT_HEAD,
        _ValueColumn("data_element", "string", lambda dv: dv.data_element),
        _ValueColumn("value", "string", lambda dv: dv.value),
        _ValueColumn("numeric_value", "number", lambda dv: number(dv.value)),
        _ValueColumn("value_updated_at", "datetime", lambda dv: dv.updated_at),
    ),
    lambda e: e.data_values,
)

_RequisitionColumn = Column[Requisition]
_RequisitionLineColumn = LineColumn[RequisitionLine]
REQUISITIONS: Table[Requisition, RequisitionLine] = Table(
    Requisition,
    (
        _RequisitionColumn("event", "string", lambda r: r.event.uid),
        _RequisitionColumn("org_unit", "string", lambda r: r.org_unit),
        *_place(),
        _RequisitionColumn("occurred_at", "datetime", lambda r: r.occurred_at),
        _RequisitionColumn("completed_at", "datetime", lambda r: r.completed_at),
        _RequisitionColumn("updated_at", "datetime", lambda r: r.updated_at),
        _RequisitionLineColumn("data_element", "string", lambda line: line.data_element),
        _RequisitionLineColumn("item_code", "string", lambda line: _code(line.item)),
        _RequisitionLineColumn("item_name", "string", lambda line: _name(line.item)),
        _RequisitionLineColumn("quantity", "number", lambda line: line.quantity),
        _RequisitionLineColumn("raw_value", "string", lambda line: line.raw_value),
        _RequisitionColumn("problems", "string", lambda r: problems_text(r.problems)),
        _RequisitionColumn("source", "string", lambda r: r.source),
    ),
    lambda r: r.lines,
)

_ReceiptColumn = Column[ConsignmentReceipt]
RECEIPTS: Table[ConsignmentReceipt, None] = Table(
    ConsignmentReceipt,
    (
        _ReceiptColumn("event", "string", lambda r: r.event.uid),
        _ReceiptColumn("org_unit", "string", lambda r: r.org_unit),
        *_place(),
        _ReceiptColumn("consignment_number", "string", lambda r: r.consignment_number),
        _ReceiptColumn("completed_at", "datetime", lambda r: r.completed_at),
        _ReceiptColumn("updated_at", "datetime", lambda r: r.updated_at),
        # the event's data values as one JSON object: what else the facility recorded
        _ReceiptColumn("values", "string", lambda r: json.dumps(dict(r.values), sort_keys=True)),
        _ReceiptColumn("problems", "string", lambda r: problems_text(r.problems)),
        _ReceiptColumn("source", "string", lambda r: r.source),
    ),
)

_TransactionColumn = Column[StockTransaction]
STOCK_TRANSACTIONS: Table[StockTransaction, None] = Table(
    StockTransaction,
    (
        _TransactionColumn("event", "string", lambda t: t.event.uid),
        _TransactionColumn("org_unit", "string", lambda t: t.org_unit),
        _TransactionColumn("tracked_entity", "string", lambda t: t.tracked_entity),
        _TransactionColumn("enrollment", "string", lambda t: t.enrollment),
        _TransactionColumn("item_code", "string", lambda t: t.item_code),
        _TransactionColumn("status", "string", lambda t: t.event.status),
        _TransactionColumn("deleted", "bool", lambda t: t.event.deleted),
        _TransactionColumn("occurred_at", "datetime", lambda t: t.occurred_at),
        _TransactionColumn("stock_on_hand", "number", lambda t: t.stock_on_hand),
        _TransactionColumn("received_quantity", "number", lambda t: t.received_quantity),
        _TransactionColumn("problems", "string", lambda t: problems_text(t.problems)),
        _TransactionColumn("source", "string", lambda t: t.source),
    ),
)

_LevelColumn = Column[StockLevel]
STOCK_LEVELS: Table[StockLevel, None] = Table(
    StockLevel,
    (
        _LevelColumn("org_unit", "string", lambda s: s.org_unit),
        _LevelColumn("item_code", "string", lambda s: s.item_code),
        _LevelColumn("stock_on_hand", "number", lambda s: s.stock_on_hand),
        _LevelColumn("as_of", "datetime", lambda s: s.as_of),
        _LevelColumn("event", "string", lambda s: s.event.uid),
    ),
)

_ReportColumn = Column[StockReport]
_ReportLineColumn = LineColumn[StockReportLine]
STOCK_REPORTS: Table[StockReport, StockReportLine] = Table(
    StockReport,
    (
        _ReportColumn("org_unit", "string", lambda r: r.org_unit),
        *_place(),
        _ReportColumn("period", "string", lambda r: r.period),
        _ReportColumn("complete_date", "date", lambda r: r.complete_date),
        _ReportLineColumn("data_element", "string", lambda line: line.data_element),
        _ReportLineColumn(
            "category_option_combo", "string", lambda line: line.category_option_combo
        ),
        _ReportLineColumn(
            "attribute_option_combo", "string", lambda line: line.attribute_option_combo
        ),
        _ReportLineColumn("item_code", "string", lambda line: _code(line.item)),
        _ReportLineColumn("item_name", "string", lambda line: _name(line.item)),
        _ReportLineColumn("measure", "string", lambda line: line.measure),
        _ReportLineColumn("value", "number", lambda line: line.value),
        _ReportLineColumn("raw_value", "string", lambda line: line.raw_value),
        _ReportLineColumn("updated_at", "datetime", lambda line: line.updated_at),
        _ReportColumn("problems", "string", lambda r: problems_text(r.problems)),
    ),
    lambda r: r.lines,
)

#: A conflict's line: one refused row, its index into the pushed values and a copy of it.
ConflictLine = tuple[int | None, Mapping[str, object] | None]
_ConflictColumn = Column[ImportConflict]
CONFLICTS: Table[ImportConflict, ConflictLine] = Table(
    ImportConflict,
    (
        LineColumn[ConflictLine]("index", "int", lambda line: line[0]),
        _ConflictColumn("error_code", "string", lambda c: c.error_code),
        _ConflictColumn("property", "string", lambda c: c.property),
        _ConflictColumn("object", "string", lambda c: c.object),
        _ConflictColumn("message", "string", lambda c: c.value),
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
