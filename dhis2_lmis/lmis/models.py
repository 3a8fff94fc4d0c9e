"""Frozen records of the LMIS flows: mSupply references and what the programs make of events.

Records are shaped for the program, not the wire: snake_case, tuples, timezone-aware datetimes,
``Decimal`` quantities. The DHIS2 records they are built from (``Event``, ``DataValue``,
``RecordProblem``) live in :mod:`dhis2_lmis.dhis2.records`. A record that could not be mapped
completely still exists, with its ``problems`` filled: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal

import attrs

from dhis2_lmis.dhis2 import _html
from dhis2_lmis.dhis2.records import Event, RecordProblem

__all__ = [
    "ConsignmentReceipt",
    "Customer",
    "Item",
    "Requisition",
    "RequisitionLine",
    "StockLevel",
    "StockReport",
    "StockReportLine",
    "StockTransaction",
    "Store",
]

# -- mSupply references -------------------------------------------------------------------


class _FrozenFields(Mapping[str, str]):
    """An immutable, hashable mapping backed by a tuple of pairs, for custom fields.

    Records are frozen and hashable (they serve as dict keys and set members); a plain dict
    field would make them neither.
    """

    __slots__ = ("_index", "_pairs")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        index = dict(pairs)
        self._index = index
        self._pairs = tuple(sorted(index.items()))

    def __getitem__(self, key: str) -> str:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __hash__(self) -> int:
        return hash(self._pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _FrozenFields):
            return self._pairs == other._pairs
        if isinstance(other, Mapping):
            return dict(self._pairs) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(dict(self._pairs))


def _freeze_fields(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    if isinstance(value, _FrozenFields):
        return value
    if isinstance(value, Mapping):
        return _FrozenFields(value.items())
    return _FrozenFields(value)


_NO_FIELDS: Mapping[str, str] = _FrozenFields()


@attrs.frozen
class Item:
    """An mSupply item.

    Attributes:
        code: the mSupply item code.
        name: the item name.
        universal_code: mSupply's universal code, one place the DHIS2 reference may live.
        custom_fields: user fields (``user_field_1`` .. ``user_field_6``) and any other custom
            field, by name; frozen, so items stay hashable.
        include_in_dhis2_push: False keeps the item out of pushes to DHIS2.
    """

    code: str
    name: str
    universal_code: str | None = None
    custom_fields: Mapping[str, str] = attrs.field(default=_NO_FIELDS, converter=_freeze_fields)
    include_in_dhis2_push: bool = True


@attrs.frozen
class Store:
    """An mSupply store (a supplying store); its org unit lives in a custom field."""

    code: str
    name: str
    custom_fields: Mapping[str, str] = attrs.field(default=_NO_FIELDS, converter=_freeze_fields)


@attrs.frozen
class Customer:
    """An mSupply customer ("name"), the requesting facility; its org unit is in a name field."""

    code: str
    name: str
    custom_fields: Mapping[str, str] = attrs.field(default=_NO_FIELDS, converter=_freeze_fields)


# -- LMIS records ------------------------------------------------------------------------


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
