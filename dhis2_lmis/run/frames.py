"""pandas DataFrames of the library's records, for notebooks (the ``notebook`` extra).

:func:`to_dataframe` turns what a fetcher yields (events, requisitions, consignment receipts,
STR stock transactions, stock levels, stock reports) or an import's conflicts into a frame
with typed columns, so the first ``groupby`` or ``pivot_table`` works without cleaning:

* timestamps are ``datetime64`` columns, timezone-aware in the zone the records carry (DHIS2
  sends none; the readers attach ``serverTimeZoneId`` when the server says it). Records in
  several zones become UTC; naive timestamps, or a mix of naive and aware ones, stay naive
  wall-clock times, as :meth:`~dhis2_lmis.lmis.models.Event.recency` compares them;
* quantities (``Decimal`` in the records) are nullable ``Float64``: a missing or non-numeric
  quantity is ``<NA>``, never 0;
* identifiers, names and messages are ``string``; record problems are joined into one text.

Nothing is dropped: a requisition without lines, an event without data values or a report
without values still gives one row, with its line columns empty.

pandas is imported only when :func:`to_dataframe` runs, so the library itself never needs it.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from dhis2_lmis.dhis2.imports import ImportConflict, ImportSummary
from dhis2_lmis.errors import MissingExtraError
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Event,
    RecordProblem,
    Requisition,
    StockLevel,
    StockReport,
    StockTransaction,
)

if TYPE_CHECKING:  # pragma: no cover - pandas is an optional extra
    import pandas as pd

    from dhis2_lmis.lmis.references import Customer, Item, Store

__all__ = ["ColumnType", "MissingExtraError", "Record", "RecordKind", "to_dataframe"]

log = logging.getLogger(__name__)

#: What :func:`to_dataframe` accepts, one type per call.
Record = (
    Event
    | Requisition
    | ConsignmentReceipt
    | StockTransaction
    | StockLevel
    | StockReport
    | ImportConflict
)
#: The ``kind=`` names, one per record type.
RecordKind = Literal[
    "events",
    "requisitions",
    "receipts",
    "stock_transactions",
    "stock_levels",
    "stock_reports",
    "conflicts",
]
#: How a column is typed: ``string``, tz-aware ``datetime``, ``date`` (naive datetime64),
#: ``number`` (nullable Float64), ``int`` (nullable Int64), ``bool`` (nullable boolean).
ColumnType = Literal["string", "datetime", "date", "number", "int", "bool"]

_Columns = tuple[tuple[str, ColumnType], ...]
_Row = tuple[object, ...]


# -- columns of each record type ----------------------------------------------------------------

_EVENT: _Columns = (
    ("event", "string"),
    ("program", "string"),
    ("program_stage", "string"),
    ("org_unit", "string"),
    ("status", "string"),
    ("occurred_at", "datetime"),
    ("scheduled_at", "datetime"),
    ("created_at", "datetime"),
    ("updated_at", "datetime"),
    ("completed_at", "datetime"),
    ("completed_by", "string"),
    ("stored_by", "string"),
    ("attribute_option_combo", "string"),
    ("enrollment", "string"),
    ("tracked_entity", "string"),
    ("deleted", "bool"),
    ("problems", "string"),
)
_EVENT_VALUE: _Columns = (
    ("data_element", "string"),
    ("value", "string"),
    ("numeric_value", "number"),
    ("value_updated_at", "datetime"),
)
_PLACE: _Columns = (
    ("customer_code", "string"),
    ("customer_name", "string"),
    ("store_code", "string"),
    ("store_name", "string"),
)
_REQUISITION: _Columns = (
    ("event", "string"),
    ("program", "string"),
    ("org_unit", "string"),
    *_PLACE,
    ("occurred_at", "datetime"),
    ("completed_at", "datetime"),
    ("updated_at", "datetime"),
    ("data_element", "string"),
    ("item_code", "string"),
    ("item_name", "string"),
    ("quantity", "number"),
    ("raw_value", "string"),
    ("problems", "string"),
    ("source", "string"),
)
_RECEIPT: _Columns = (
    ("event", "string"),
    ("org_unit", "string"),
    *_PLACE,
    ("consignment_number", "string"),
    ("completed_at", "datetime"),
    ("updated_at", "datetime"),
    ("problems", "string"),
    ("source", "string"),
)
_TRANSACTION: _Columns = (
    ("event", "string"),
    ("org_unit", "string"),
    ("tracked_entity", "string"),
    ("enrollment", "string"),
    ("item_code", "string"),
    ("status", "string"),
    ("occurred_at", "datetime"),
    ("stock_on_hand", "number"),
    ("received_quantity", "number"),
    ("problems", "string"),
    ("source", "string"),
)
_LEVEL: _Columns = (
    ("org_unit", "string"),
    ("item_code", "string"),
    ("stock_on_hand", "number"),
    ("as_of", "datetime"),
    ("event", "string"),
)
_REPORT: _Columns = (
    ("org_unit", "string"),
    *_PLACE,
    ("period", "string"),
    ("complete_date", "date"),
    ("data_element", "string"),
    ("category_option_combo", "string"),
    ("attribute_option_combo", "string"),
    ("item_code", "string"),
    ("item_name", "string"),
    ("measure", "string"),
    ("value", "number"),
    ("raw_value", "string"),
    ("updated_at", "datetime"),
    ("problems", "string"),
)
_CONFLICT: _Columns = (
    ("index", "int"),
    ("error_code", "string"),
    ("property", "string"),
    ("object", "string"),
    ("message", "string"),
)


def _problems(problems: Sequence[RecordProblem]) -> str | None:
    return "; ".join(str(p) for p in problems) if problems else None


def _place(customer: Customer | None, store: Store | None) -> _Row:
    return (
        customer.code if customer else None,
        customer.name if customer else None,
        store.code if store else None,
        store.name if store else None,
    )


def _item(item: Item | None) -> _Row:
    return (item.code, item.name) if item is not None else (None, None)


def _event_head(e: Event) -> _Row:
    return (
        e.uid,
        e.program,
        e.program_stage,
        e.org_unit,
        e.status,
        e.occurred_at,
        e.scheduled_at,
        e.created_at,
        e.updated_at,
        e.completed_at,
        e.completed_by,
        e.stored_by,
        e.attribute_option_combo,
        e.enrollment,
        e.tracked_entity,
        e.deleted,
        _problems(e.problems),
    )


def _event_rows(e: Event) -> Iterator[_Row]:
    head = _event_head(e)
    if not e.data_values:
        yield head + (None,) * len(_EVENT_VALUE)
    for dv in e.data_values:
        yield (*head, dv.data_element, dv.value, _number(dv.value), dv.updated_at)


def _requisition_rows(r: Requisition) -> Iterator[_Row]:
    head = (r.event.uid, r.program, r.org_unit, *_place(r.customer, r.store))
    times = (r.occurred_at, r.completed_at, r.updated_at)
    tail = (_problems(r.problems), r.source)
    if not r.lines:
        yield (*head, *times, None, None, None, None, None, *tail)
    for line in r.lines:
        yield (
            *head,
            *times,
            line.data_element,
            *_item(line.item),
            line.quantity,
            line.raw_value,
            *tail,
        )


def _receipt_rows(r: ConsignmentReceipt) -> Iterator[_Row]:
    yield (
        r.event.uid,
        r.org_unit,
        *_place(r.customer, r.store),
        r.consignment_number,
        r.completed_at,
        r.updated_at,
        _problems(r.problems),
        r.source,
    )


def _transaction_rows(t: StockTransaction) -> Iterator[_Row]:
    yield (
        t.event.uid,
        t.org_unit,
        t.tracked_entity,
        t.enrollment,
        t.item_code,
        t.event.status,
        t.occurred_at,
        t.stock_on_hand,
        t.received_quantity,
        _problems(t.problems),
        t.source,
    )


def _level_rows(s: StockLevel) -> Iterator[_Row]:
    yield (s.org_unit, s.item_code, s.stock_on_hand, s.as_of, s.event.uid)


def _report_rows(r: StockReport) -> Iterator[_Row]:
    head = (r.org_unit, *_place(r.customer, r.store), r.period, r.complete_date)
    problems = _problems(r.problems)
    if not r.lines:
        yield (*head, *(None,) * 9, problems)
    for line in r.lines:
        yield (
            *head,
            line.data_element,
            line.category_option_combo,
            line.attribute_option_combo,
            *_item(line.item),
            line.measure,
            line.value,
            line.raw_value,
            line.updated_at,
            problems,
        )


_ROWS: dict[RecordKind, tuple[type, _Columns, Callable[[Any], Iterator[_Row]]]] = {
    "events": (Event, _EVENT + _EVENT_VALUE, _event_rows),
    "requisitions": (Requisition, _REQUISITION, _requisition_rows),
    "receipts": (ConsignmentReceipt, _RECEIPT, _receipt_rows),
    "stock_transactions": (StockTransaction, _TRANSACTION, _transaction_rows),
    "stock_levels": (StockLevel, _LEVEL, _level_rows),
    "stock_reports": (StockReport, _REPORT, _report_rows),
    "conflicts": (ImportConflict, _CONFLICT, lambda c: iter(())),  # built by _conflict_table
}


# -- the entry point ---------------------------------------------------------------------------


def to_dataframe(
    records: Iterable[Record] | ImportSummary,
    *,
    wide: bool = False,
    kind: RecordKind | None = None,
) -> pd.DataFrame:
    """A typed DataFrame of fetched records or of an import's conflicts.

    The record type of the first item decides the layout, so the fetchers' iterators can be
    passed as they are (they are read once, lazily, page by page):

    * :class:`Event`: one row per data value, with the event's columns (``value`` as DHIS2
      sent it, ``numeric_value`` when it is a number); with ``wide=True`` one row per event
      and a column per data element;
    * :class:`Requisition`: one row per line, with item code and name and the customer or
      store code and name when resolved, ``quantity``, and ``problems`` joined as text;
    * :class:`ConsignmentReceipt`: one row per receipt;
    * :class:`StockTransaction`: one row per STR event (``stock_on_hand``,
      ``received_quantity``);
    * :class:`StockLevel`: one row per (org unit, item), the latest stock on hand;
    * :class:`StockReport`: one row per line (data element and category option combo, and
      under a data set layout the item and measure they stand for);
    * :class:`ImportSummary` or :class:`ImportConflict`: one row per refused pushed row
      (``index`` into the pushed values), with that row's fields in snake case
      (``data_element``, ``period``, ...).

    Args:
        records: the records, all of one type, or an :class:`ImportSummary`.
        wide: events only: one row per event and a column per data element (numeric when
            every value of that data element is a number).
        kind: the layout to use for empty input (so the frame still has its columns); when
            given, every record must be of that kind.

    Returns:
        A new DataFrame with a default ``RangeIndex``. Empty input without ``kind`` gives an
        empty frame without columns.

    Raises:
        MissingExtraError: pandas is not installed (``pip install 'dhis2-lmis[notebook]'``).
        TypeError: a record is not of a supported type, or not of the first record's type.
        ValueError: ``wide=True`` for records other than events.
    """
    pd = _pandas()
    if isinstance(records, ImportSummary):
        return _conflict_table(pd, records.conflicts)
    items: Iterator[Any] = iter(records)
    first = next(items, None)
    if first is None:
        if kind is None:
            return pd.DataFrame()
        first_kind = kind
    else:
        first_kind = _kind_of(first)
        if kind is not None and kind != first_kind:
            raise TypeError(f"to_dataframe(kind={kind!r}) got a {type(first).__name__}")
        items = itertools.chain((first,), items)
    if wide and first_kind != "events":
        raise ValueError(f"wide=True is for events, not {first_kind}")
    record_type, columns, rows = _ROWS[first_kind]
    checked = _checked(items, record_type)
    if first_kind == "conflicts":
        return _conflict_table(pd, checked)
    if wide:
        return _wide_events(pd, checked)
    return _frame(pd, columns, (row for record in checked for row in rows(record)))


def _pandas() -> Any:
    try:
        import pandas  # noqa: PLC0415 - optional extra, imported on first use
    except ImportError as exc:
        raise MissingExtraError("pandas", "to_dataframe") from exc
    return pandas


def _kind_of(record: object) -> RecordKind:
    for kind, (record_type, _, _) in _ROWS.items():
        if isinstance(record, record_type):
            return kind
    supported = ", ".join(t.__name__ for t, _, _ in _ROWS.values())
    raise TypeError(
        f"to_dataframe cannot tabulate a {type(record).__name__}; it takes {supported} "
        "or an ImportSummary"
    )


def _checked(items: Iterable[Any], record_type: type) -> Iterator[Any]:
    for n, item in enumerate(items):
        if not isinstance(item, record_type):
            raise TypeError(
                f"to_dataframe: item {n} is a {type(item).__name__}, not a {record_type.__name__}"
            )
        yield item


# -- building frames ---------------------------------------------------------------------------


def _frame(pd: Any, columns: _Columns, rows: Iterable[_Row]) -> Any:
    values: list[list[object]] = [[] for _ in columns]
    for row in rows:
        for column, value in zip(values, row, strict=True):
            column.append(value)
    return pd.DataFrame(
        {
            name: _typed(pd, kind, column)
            for (name, kind), column in zip(columns, values, strict=True)
        },
        columns=[name for name, _ in columns],
    )


def _wide_events(pd: Any, events: Iterable[Event]) -> Any:
    heads: list[_Row] = []
    per_event: list[dict[str, str | None]] = []
    elements: dict[str, None] = {}  # first-seen order
    for event in events:
        heads.append(_event_head(event))
        values = event.values()
        per_event.append(values)
        elements.update(dict.fromkeys(values))
    frame = _frame(pd, _EVENT, heads)
    taken = set(frame.columns)
    for element in elements:
        column = [values.get(element) for values in per_event]
        name = element if element not in taken else f"{element} (data element)"
        numbers = [_number(v) for v in column]
        if all(n is not None for n, v in zip(numbers, column, strict=True) if v is not None):
            frame[name] = _typed(pd, "number", numbers)
        else:
            frame[name] = _typed(pd, "string", column)
    return frame


def _conflict_table(pd: Any, conflicts: Iterable[ImportConflict]) -> Any:
    rows: list[tuple[_Row, Mapping[str, object]]] = []
    fields: dict[str, None] = {}
    for c in conflicts:
        head = (c.error_code, c.property, c.object, c.value)
        if not c.indexes and not c.data_values:
            rows.append(((None, *head), {}))
        for index, sent in itertools.zip_longest(c.indexes, c.data_values):
            row = {_snake(key): value for key, value in (sent or {}).items()}
            fields.update(dict.fromkeys(row))
            rows.append(((index, *head), row))
    extra: _Columns = tuple((name, "string") for name in fields if name not in dict(_CONFLICT))
    columns: _Columns = _CONFLICT + extra
    return _frame(
        pd, columns, ((*head, *(row.get(name) for name, _ in extra)) for head, row in rows)
    )


def _typed(pd: Any, kind: ColumnType, values: Sequence[object]) -> Any:
    if kind == "datetime":
        return _datetimes(pd, values)
    if kind == "date":
        return pd.to_datetime(values).array
    if kind == "number":
        return pd.array([_float(v) for v in values], dtype="Float64")
    if kind == "int":
        return pd.array(values, dtype="Int64")
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    return pd.array([None if v is None else str(v) for v in values], dtype="string")


def _datetimes(pd: Any, values: Sequence[object]) -> Any:
    present = [v for v in values if isinstance(v, datetime)]
    aware = [v for v in present if v.utcoffset() is not None]
    if present and len(aware) == len(present):
        zone = aware[0].tzinfo
        instants = pd.to_datetime(values, utc=True)
        if all(v.tzinfo == zone for v in aware):
            instants = instants.tz_convert(zone)
        return instants.array
    if aware:
        log.debug("naive and aware timestamps in one column: keeping wall-clock times")
    wall = [v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in values]
    return pd.to_datetime(wall).array


def _number(value: object) -> Decimal | None:
    """A finite number from a Decimal or a DHIS2 value string; None for anything else."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and value.strip():
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def _float(value: object) -> float | None:
    if isinstance(value, (Decimal, float, int)):
        return float(value)
    return None


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()
