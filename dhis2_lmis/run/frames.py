"""pandas DataFrames of the library's records, for notebooks (the ``notebook`` extra).

:func:`to_dataframe` turns what a fetcher yields (events, requisitions, consignment receipts,
STR stock transactions, stock levels, stock reports) or an import's conflicts into a frame
with typed columns, so the first ``groupby`` or ``pivot_table`` works without cleaning:

* timestamps are ``datetime64`` columns, timezone-aware in the zone the records carry (DHIS2
  sends none; the readers attach ``serverTimeZoneId`` when the server says it). Records in
  several zones become UTC; naive timestamps, or a mix of naive and aware ones, stay naive
  wall-clock times, as :meth:`~dhis2_lmis.dhis2.records.Event.recency` compares them;
* quantities (``Decimal`` in the records) are nullable ``Float64``: a missing or non-numeric
  quantity is ``<NA>``, never 0;
* identifiers, names and messages are ``string``; record problems are joined into one text.

Nothing is dropped: a requisition without lines, an event without data values or a report
without values still gives one row, with its line columns empty. The columns are those
``dhis2-lmis pull`` prints for the same records: both read them from
:mod:`dhis2_lmis.run._tabular`; this module only types them.

pandas is imported only when :func:`to_dataframe` runs, so the library itself never needs it.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dhis2_lmis.dhis2.imports import ImportConflict, ImportSummary
from dhis2_lmis.dhis2.records import Event
from dhis2_lmis.errors import MissingExtraError
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Requisition,
    StockLevel,
    StockReport,
    StockTransaction,
)
from dhis2_lmis.run._tabular import (
    CONFLICTS,
    EVENT_HEAD,
    TABLES,
    Column,
    ColumnType,
    LineColumn,
    RecordKind,
    number,
)

if TYPE_CHECKING:  # pragma: no cover - pandas is an optional extra
    import pandas as pd

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

_Columns = Sequence[tuple[str, ColumnType]]
_Row = tuple[object, ...]


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
    table = TABLES[first_kind]
    checked = _checked(items, table.record_type)
    if first_kind == "conflicts":
        return _conflict_table(pd, checked)
    if wide:
        return _wide_events(pd, checked)
    return _frame(
        pd, _typing(table.columns), (row for record in checked for row in table.rows(record))
    )


def _pandas() -> Any:
    try:
        import pandas  # noqa: PLC0415 - optional extra, imported on first use
    except ImportError as exc:
        raise MissingExtraError("pandas", "to_dataframe") from exc
    return pandas


def _kind_of(record: object) -> RecordKind:
    for kind, table in TABLES.items():
        if isinstance(record, table.record_type):
            return kind
    supported = ", ".join(table.record_type.__name__ for table in TABLES.values())
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


def _typing(columns: Iterable[Column[Any] | LineColumn[Any]]) -> _Columns:
    return tuple((column.name, column.type) for column in columns)


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
        heads.append(tuple(column.get(event) for column in EVENT_HEAD))
        values = event.values()
        per_event.append(values)
        elements.update(dict.fromkeys(values))
    frame = _frame(pd, _typing(EVENT_HEAD), heads)
    taken = set(frame.columns)
    for element in elements:
        column = [values.get(element) for values in per_event]
        name = element if element not in taken else f"{element} (data element)"
        numbers = [number(v) for v in column]
        if all(n is not None for n, v in zip(numbers, column, strict=True) if v is not None):
            frame[name] = _typed(pd, "number", numbers)
        else:
            frame[name] = _typed(pd, "string", column)
    return frame


def _conflict_table(pd: Any, conflicts: Iterable[ImportConflict]) -> Any:
    rows: list[tuple[_Row, Mapping[str, object]]] = []
    fields: dict[str, None] = {}
    for conflict in conflicts:
        for line, head in zip(CONFLICTS.lines_of(conflict), CONFLICTS.rows(conflict), strict=True):
            sent = line[1] if line is not None else None
            row = {_snake(key): value for key, value in (sent or {}).items()}
            fields.update(dict.fromkeys(row))
            rows.append((head, row))
    extra: _Columns = tuple((name, "string") for name in fields if name not in CONFLICTS.names)
    columns: _Columns = (*_typing(CONFLICTS.columns), *extra)
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


def _float(value: object) -> float | None:
    if isinstance(value, (Decimal, float, int)):
        return float(value)
    return None


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()
