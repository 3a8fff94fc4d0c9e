"""Building and pushing aggregate data value sets (``POST /api/dataValueSets``).

The builder turns LMIS numbers into the strings DHIS2 stores, refuses what DHIS2 would store
wrongly (``NaN``, ``1e+3``, ``True``), catches the same value given twice before the server does,
and splits big pushes into chunks. :func:`push_data_value_set` sends the chunks and folds their
import summaries into one, with every conflict pointing back at the caller's rows.

One rule for bad rows, the same for the CLI and for Python (docs/flows.md, "Bad rows"):
:meth:`DataValueSetBuilder.add_rows` checks every row and keeps the ones it refuses in
:attr:`~DataValueSetBuilder.rejected`, named the way the caller sees them (``values.csv:7``,
``row 3``); a push sends the good rows and reports the rest, and a push with a preflight sends
nothing at all while any row, refused or checked, would be lost.

Period arguments here are already-formatted period ids; :func:`~periods.format_period`
makes them from dates.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, overload

import attrs
import msgspec

from dhis2_lmis.dhis2 import _json
from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2.datavaluesets import (
    DATA_SET,
    PATH,
    WireRow,
    data_value_set,
    effective_rows,
    import_params,
    payload_head,
    payload_header,
    payload_values,
)
from dhis2_lmis.dhis2.imports import (
    ImportFailedError,
    ImportSummary,
    merge_summaries,
    parse_import_summary,
)
from dhis2_lmis.errors import (
    ConfigError,
    DuplicateValueError,
    InvalidValueError,
    UnknownReferenceError,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from dhis2_lmis.lmis.models import Item
    from dhis2_lmis.lmis.references import LayoutCell

__all__ = [
    "DataValueSetBuilder",
    "DuplicateValueError",
    "ImportStrategy",
    "ImportSummary",
    "InvalidValueError",
    "ItemLayout",
    "ItemReferences",
    "ItemValueSetBuilder",
    "JsonResponseLike",
    "NamedChunk",
    "NumberLike",
    "Preflight",
    "RejectedRow",
    "SkippedItem",
    "SupportsPostJson",
    "format_value",
    "push_data_value_set",
]

log = logging.getLogger(__name__)

# (data element, category option combo, attribute option combo, org unit, period)
_FullKey: TypeAlias = "tuple[str, str | None, str | None, str, str]"
# A value at the builder's own org unit, period and attribute option combo (nearly every one)
# is keyed by (data element, category option combo) alone: 24 bytes less per value.
_Key: TypeAlias = "tuple[str, str | None] | _FullKey"
ImportStrategy = Literal["CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE"]
NumberLike: TypeAlias = "int | float | Decimal | str"
NamedChunk: TypeAlias = "tuple[JsonObject, Sequence[str]]"
"""A chunk payload and the names of its rows, as the caller sees them (``values.csv:7``)."""
# A chunk on its way to the wire: its rows may be compact WireRow structures.
_Chunk: TypeAlias = "tuple[Mapping[str, object], Sequence[str]]"

_first, _second = operator.itemgetter(0), operator.itemgetter(1)
_isfinite = math.isfinite  # bound once: add() calls it for every value of a push
_NUMERIC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def format_value(value: NumberLike, *, data_element: str, round_off: bool = False) -> str:
    """Return ``value`` as the string DHIS2 should store.

    Plain decimal notation only (DHIS2 rejects or misreads ``1E+3``): ``Decimal`` formatted with
    ``"f"``, trailing fraction zeros trimmed (``12.50`` -> ``"12.5"``, ``3.0`` -> ``"3"``), and
    negative zero written ``"0"``. Floats go through ``repr`` so ``0.1`` stays ``"0.1"``.
    With ``round_off`` the value is rounded half away from zero to a whole number
    (``2.5`` -> ``"3"``, ``-2.5`` -> ``"-3"``), for integer data elements fed by averages.

    Args:
        value: an int, float, Decimal or numeric string (``"12"``, ``" 1.5e2 "``).
        data_element: named in the error, so a failure points at its source.
        round_off: round to a whole number.

    Raises:
        InvalidValueError: None, a boolean, NaN, infinity, a non-numeric string or another type.
    """
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):  # type: ignore[arg-type]
        return _plain_texts((value,), round_off)[0]  # type: ignore[arg-type]  # an int or float
    return _decimal_text(_to_decimal(value, data_element), round_off)


def _decimal_text(number: Decimal, round_off: bool) -> str:
    """A finite Decimal in plain notation, trailing fraction zeros trimmed."""
    if round_off:
        number = number.to_integral_value(rounding=ROUND_HALF_UP)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def _plain_texts(values: Iterable[str | int | float], round_off: bool) -> list[str]:
    """The text of each value: a text as is, an int or finite float in plain notation.

    The fast path of :func:`format_value`, and how a push formats a whole chunk at once (one
    call per chunk, not per value). Rounding is half away from zero; ``x - floor(x)`` is exact
    for floats, so 0.49999999999999994 does not round up. A float ``repr`` writes with an
    exponent (``1e+16``) goes the Decimal way.
    """
    texts: list[str] = []
    append, floor = texts.append, math.floor
    for value in values:
        if type(value) is str:
            append(value)
        elif type(value) is int:
            append(str(value))
        elif round_off:
            number = float(value)  # a float already: free, and typed for what follows
            whole = floor(number)
            fraction = number - whole
            append(str(whole + 1 if fraction > 0.5 or (fraction == 0.5 and number > 0) else whole))
        else:
            text = repr(value)
            if "e" in text:
                append(_decimal_text(Decimal(text), round_off=False))
            else:
                text = text.removesuffix(".0")
                append("0" if text == "-0" else text)
    return texts


def _no_org_unit(value: object, data_element: str) -> InvalidValueError:
    return _invalid(value, data_element, "no org unit (none given here or to the builder)")


def _invalid(value: object, data_element: str, reason: str) -> InvalidValueError:
    return InvalidValueError(
        f"value {value!r} for data element {data_element} cannot be sent: {reason}",
        data_element=data_element,
        value=repr(value),
    )


def _incomplete(element: object, value: object) -> InvalidValueError:
    """A row without its data element or its value, saying which and what the row does hold."""
    if isinstance(element, str):
        return InvalidValueError(
            f"no value for data element {element}: fill the value column",
            data_element=element,
            value=repr(value),
        )
    message = (
        "no data_element and no value: fill both columns, or delete the row"
        if value is None
        else f"no data_element for value {value!r}: fill the data_element column"
    )
    return InvalidValueError(message, data_element="", value=repr(value))


def _to_decimal(value: object, data_element: str) -> Decimal:
    if value is None:
        raise _invalid(value, data_element, "no value (None)")
    if isinstance(value, bool):
        raise _invalid(value, data_element, "booleans are not numbers here")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMERIC_RE.fullmatch(text):
            raise _invalid(value, data_element, "not a number")
        number = Decimal(text)
    elif isinstance(value, numbers.Integral):
        number = Decimal(int(value))
    elif isinstance(value, numbers.Real):
        as_float = float(value)
        if not math.isfinite(as_float):
            raise _invalid(value, data_element, "not a finite number")
        number = Decimal(repr(as_float))
    else:
        raise _invalid(value, data_element, f"unsupported type {type(value).__name__}")
    if not number.is_finite():
        raise _invalid(value, data_element, "not a finite number")
    return number


@attrs.frozen
class RejectedRow:
    """A row :meth:`DataValueSetBuilder.add_rows` left out, named the way the caller sees it.

    Attributes:
        row: ``values.csv:7`` for a file, ``row 3`` (0-based index) for a Python list.
        error: why: not a number, no data element, no org unit, or a repeat of another row.
    """

    row: str
    error: InvalidValueError

    def __str__(self) -> str:
        return f"{self.row}: {self.error}"


ROW_COLUMNS = (
    "data_element",
    "value",
    "category_option_combo",
    "attribute_option_combo",
    "org_unit",
    "period",
    "comment",
)
"""The keys :meth:`DataValueSetBuilder.add_rows` reads (the CLI's ``push-values`` CSV columns)."""


class DataValueSetBuilder:
    """Collects data values into a ``/api/dataValueSets`` payload.

    Top-level ``period``, ``orgUnit`` and ``attributeOptionCombo`` apply to every row; a row
    repeats one only when it differs, which keeps payloads small.

    Args:
        data_set: data set UID (or code); None for bulk pushes across data sets.
        period: the default period id (already formatted, e.g. ``"202404"``).
        org_unit: the default org unit; None when every row names its own.
        attribute_option_combo: the default attribute option combo (a funding source, say);
            None means DHIS2's default combo, as DHIS2 does when a value names none.
        round_off: round every value to a whole number (see :func:`format_value`).
        complete_date: mark the data set complete on this date (needs ``data_set``).

    Example:
        >>> b = DataValueSetBuilder("LmIsDsStck1", "202404", "DiszpKrYNg8")
        >>> b.add("StockOnHnd1", 340)
        >>> b.build()["dataValues"]
        [{'dataElement': 'StockOnHnd1', 'value': '340'}]
    """

    #: Ask DHIS2 to refuse a category option combo that is not in the data element's category
    #: combo (``strictCategoryOptionCombos``); without it DHIS2 stores the value where no form
    #: or report shows it. Builders placing values by a data set layout set it.
    strict_category_option_combos: bool = False

    def __init__(
        self,
        data_set: str | None,
        period: str,
        org_unit: str | None,
        *,
        attribute_option_combo: str | None = None,
        round_off: bool = False,
        complete_date: date | str | None = None,
    ) -> None:
        self.data_set = data_set
        self._period = period
        self._org_unit = org_unit
        self._attribute_option_combo = attribute_option_combo
        self.round_off = round_off
        self.complete_date = (
            complete_date.isoformat() if isinstance(complete_date, date) else complete_date
        )
        # key -> the value (see add). One dict keeps the insertion order and refuses
        # duplicates; rows become JSON only a chunk at a time, so a large push holds a key and
        # a number per value, not a dict. The rare comments, and the row names that differ from
        # "row <position>", sit beside it.
        self._values: dict[_Key, str | int | float] = {}
        self._comments: dict[_Key, str] = {}
        self._names: dict[_Key, str] = {}
        self.rejected: list[RejectedRow] = []
        """Rows :meth:`add_rows` refused, in order; a push with a preflight sends nothing while
        this is not empty."""

    @property
    def period(self) -> str:
        """The default period of the rows (fixed: added values are keyed on it)."""
        return self._period

    @property
    def org_unit(self) -> str | None:
        """The default org unit of the rows (fixed, as :attr:`period`)."""
        return self._org_unit

    @property
    def attribute_option_combo(self) -> str | None:
        """The default attribute option combo of the rows (fixed, as :attr:`period`)."""
        return self._attribute_option_combo

    def add(
        self,
        data_element: str,
        value: NumberLike,
        *,
        category_option_combo: str | None = None,
        attribute_option_combo: str | None = None,
        comment: str | None = None,
        org_unit: str | None = None,
        period: str | None = None,
        row: str | None = None,
    ) -> None:
        """Add one value.

        Args:
            row: how messages name this value (``values.csv:7``); default ``row <n>``, its
                0-based position in the push.

        Raises:
            InvalidValueError: the value is not a finite number, or no org unit is known for it.
            DuplicateValueError: this data element, option combos, org unit and period were
                already added.
        """
        # A finite int or float is kept as given (24-28 bytes, or nothing when the caller holds
        # it) and formatted when its chunk is encoded, which cannot fail; anything else is
        # formatted now, so a bad value still fails here.
        kept: str | int | float = value  # type: ignore[assignment]  # narrowed just below
        if not (type(value) is int or (type(value) is float and _isfinite(value))):
            kept = format_value(value, data_element=data_element, round_off=self.round_off)
        key: _Key
        if org_unit is None and period is None and attribute_option_combo is None:
            if self._org_unit is None:
                raise _no_org_unit(value, data_element)
            key = (data_element, category_option_combo)  # the builder's own place
        else:
            key = self._key(
                data_element,
                category_option_combo,
                attribute_option_combo=attribute_option_combo,
                org_unit=org_unit,
                period=period,
                value=value,
            )
        values = self._values
        if key in values:
            raise self._duplicate(key, value)
        if row is not None and row != f"row {len(values)}":
            self._names[key] = row
        values[key] = kept
        if comment is not None:
            self._comments[key] = comment

    def _key(
        self,
        data_element: str,
        combo: str | None,
        *,
        attribute_option_combo: str | None,
        org_unit: str | None,
        period: str | None,
        value: object,
    ) -> _Key:
        """The key of a value that names its own place: short when that is the builder's."""
        row_org_unit = org_unit or self._org_unit
        if row_org_unit is None:
            raise _no_org_unit(value, data_element)
        row_period = period or self._period
        aoc = attribute_option_combo or self._attribute_option_combo
        if (row_org_unit, row_period, aoc) == (
            self._org_unit,
            self._period,
            self._attribute_option_combo,
        ):
            return (data_element, combo)
        return (data_element, combo, aoc, row_org_unit, row_period)

    def _full_key(self, key: _Key) -> _FullKey:
        """The five parts of a key, a short one completed with the builder's own place."""
        if len(key) == 2:
            element, combo = key
            return (
                element,
                combo,
                self._attribute_option_combo,
                self._org_unit or "",
                self._period,
            )
        return key

    def _duplicate(self, key: _Key, value: object) -> DuplicateValueError:
        data_element, combo, aoc, org_unit, period = full = self._full_key(key)
        return DuplicateValueError(
            f"data element {data_element}, category option combo {combo or '(default)'}, "
            f"attribute option combo {aoc or '(default)'}, org unit {org_unit}, period "
            f"{period} was already added{self._named(key)}; DHIS2 would keep only one of them",
            key=full,
            value=repr(value),
        )

    def _named(self, key: _Key) -> str:
        name = self._names.get(key)
        return f" ({name})" if name is not None else ""

    def add_rows(
        self,
        rows: Iterable[Mapping[str, object]],
        *,
        names: Callable[[int], str] | None = None,
    ) -> int:
        """Add many values; bad rows are kept in :attr:`rejected`, never raised.

        The batch form of :meth:`add`, and what ``dhis2-lmis push-values`` runs on its CSV:
        every row is checked, each refused one lands in :attr:`rejected` with its name and
        reason, and the others are added. Keys are :data:`ROW_COLUMNS` (``data_element`` and
        ``value`` required; empty strings count as absent).

        Args:
            rows: mappings such as ``{"data_element": "AMOX250", "value": 12}``.
            names: names row ``i`` (0-based) in messages; default ``row <i>``.

        Returns:
            How many rows were added.
        """
        name_of = names or (lambda i: f"row {i}")
        added = 0
        for index, raw in enumerate(rows):
            name = name_of(index)
            fields = {k: v for k in ROW_COLUMNS if (v := raw.get(k)) is not None and v != ""}
            element, value = fields.get("data_element"), fields.get("value")
            try:
                if not isinstance(element, str) or value is None:
                    raise _incomplete(element, value)
                self.add(
                    element,
                    value,  # type: ignore[arg-type]  # format_value refuses the wrong types
                    category_option_combo=_text_or_none(fields, "category_option_combo"),
                    attribute_option_combo=_text_or_none(fields, "attribute_option_combo"),
                    comment=_text_or_none(fields, "comment"),
                    org_unit=_text_or_none(fields, "org_unit"),
                    period=_text_or_none(fields, "period"),
                    row=name,
                )
            except InvalidValueError as exc:
                self.rejected.append(RejectedRow(name, exc))
                continue
            added += 1
        return added

    def _wire_rows(self, keys: Iterable[_Key]) -> list[WireRow]:
        """Values as DHIS2 reads them; org unit, period and combos only when they differ.

        The loop every pushed value goes through once. A value keyed short (at the builder's
        own org unit, period and attribute option combo) needs no comparison at all.
        """
        values, comments = self._values, self._comments
        keys = list(keys)
        # add() kept an int or finite float as given (anything else as its text): no failure
        texts = _plain_texts(list(map(values.__getitem__, keys)), self.round_off)
        if not comments and max(map(len, keys), default=2) == 2:
            # Every value at the builder's own org unit, period and attribute option combo,
            # none with a comment (nearly every push): the rows are made in C.
            elements, combos = map(_first, keys), map(_second, keys)
            none = itertools.repeat(None)
            return list(map(WireRow, elements, combos, none, none, none, texts))
        rows: list[WireRow] = []
        append = rows.append
        for key, text in zip(keys, texts, strict=True):
            comment = comments.get(key) if comments else None
            if len(key) == 2:  # at the builder's org unit, period and attribute option combo
                append(WireRow(key[0], key[1], None, None, None, text, comment))
            else:
                append(self._own_row(key, text, comment))
        return rows

    def _own_row(self, key: _FullKey, text: str, comment: str | None) -> WireRow:
        """A value of its own org unit, period or option combo: what differs is written."""
        data_element, combo, aoc, org_unit, period = key
        return WireRow(
            data_element,
            combo,
            None if aoc == self._attribute_option_combo else aoc,
            None if org_unit == self._org_unit else org_unit,
            None if period == self._period else period,
            text,
            comment,
        )

    def __len__(self) -> int:
        return len(self._values)

    @property
    def rows(self) -> tuple[JsonObject, ...]:
        """The rows as JSON objects, in the order they were added (fresh each time)."""
        return tuple(msgspec.to_builtins(self._wire_rows(self._values)))

    @property
    def row_names(self) -> tuple[str, ...]:
        """How messages name each row, in the order of :attr:`rows`."""
        return tuple(self._names.get(k, f"row {i}") for i, k in enumerate(self._values))

    def _header(self) -> JsonObject:
        return payload_header(
            data_set=self.data_set,
            complete_date=self.complete_date,
            period=self.period,
            org_unit=self.org_unit,
            attribute_option_combo=self.attribute_option_combo,
        )

    def build(self) -> JsonObject:
        """Return the whole payload; a fresh dict each time, safe to change."""
        return data_value_set(self._header(), list(self.rows))

    def iter_chunks(self, size: int) -> Iterator[JsonObject]:
        """Yield payloads of at most ``size`` values, each with the full top-level fields.

        Rows are built a chunk at a time, so memory follows the chunk size, not the push.
        Yields nothing when no value was added.

        Raises:
            ConfigError: ``size`` is less than 1.
        """
        _check_chunk_size(size)
        return (_as_json(chunk) for chunk, _ in self._chunks(size))

    def iter_named_chunks(self, size: int) -> Iterator[NamedChunk]:
        """:meth:`iter_chunks` with the names of each chunk's rows (see :meth:`add`).

        Raises:
            ConfigError: ``size`` is less than 1.
        """
        _check_chunk_size(size)
        return ((_as_json(chunk), list(names)) for chunk, names in self._chunks(size))

    def _chunks(self, size: int) -> Iterator[_Chunk]:
        """Chunks whose rows are compact structures that encode straight to JSON."""
        head = self._header()
        remaining = iter(self._values)
        offset = 0
        while True:
            keys = list(itertools.islice(remaining, size))  # the builder's own key tuples
            if not keys:
                return
            rows = self._wire_rows(keys)
            yield data_value_set(head, rows), _RowNames(keys, offset, self._names)
            offset += len(rows)


class _RowNames(Sequence[str]):
    """The names of a chunk's rows (``row <position>`` unless named), made only when a
    conflict or a preflight check asks for one: a clean push never makes them."""

    def __init__(self, keys: list[_Key], offset: int, names: Mapping[_Key, str]) -> None:
        self._keys = keys
        self._offset = offset
        self._names = names

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = range(len(self._keys))[index]  # IndexError past the end, as a list
        return self._names.get(self._keys[position], f"row {self._offset + position}")


def _as_json(chunk: Mapping[str, object]) -> JsonObject:
    """A chunk with its rows as JSON objects (what callers and preflight checks read)."""
    return msgspec.to_builtins(chunk)  # type: ignore[no-any-return]  # a dict of JSON values


def _text_or_none(fields: Mapping[str, object], key: str) -> str | None:
    value = fields.get(key)
    return None if value is None else str(value)


class ItemReferences(Protocol):
    """What an item builder needs of an :class:`~dhis2_lmis.lmis.references.ItemResolver`."""

    @property
    def item_field(self) -> str:
        """Where items keep their data element reference."""

    @property
    def id_scheme(self) -> Literal["CODE", "UID"]:
        """Whether references (and pushed data elements) are codes or UIDs."""

    def dhis2_ref(self, item: Item) -> str | None:
        """The item's data element code or UID; None when its field is empty."""


class ItemLayout(Protocol):
    """What an item builder needs of a :class:`~dhis2_lmis.lmis.references.LayoutResolver`."""

    @property
    def measures(self) -> tuple[str, ...]:
        """The configured measure names."""

    def cell(self, item: Item, measure: str) -> LayoutCell:
        """The data element and combo of the item's measure (raises UnknownReferenceError)."""


@attrs.frozen
class SkippedItem:
    """An item (or one measure of it) :meth:`ItemValueSetBuilder.add_item` left out, and why."""

    item: Item
    reason: str
    measure: str | None = None

    def __str__(self) -> str:
        what = f" {self.measure}" if self.measure else ""
        return f"item {self.item.code} ({self.item.name}){what} skipped: {self.reason}"


class ItemValueSetBuilder(DataValueSetBuilder):
    """A data value set builder that names data elements by mSupply item.

    Without a layout the data element comes from the item's reference (``item_field``, in
    the configured id scheme). With a ``layout`` (the ``[data_set]`` section) each value is an
    item's measure, and the layout says which data element and category option combo hold it
    (docs/layouts.md); data elements go out in the configured id scheme, combos as UIDs.
    Items not "included in DHIS2 data push", items whose reference field is empty and measures
    the layout cannot place are skipped and listed in :attr:`skipped` instead of failing the
    whole push.

    Args:
        items: resolves an item to its data element reference.
        layout: places items' measures; None keeps one data element per item.

    The other arguments are those of :class:`DataValueSetBuilder`.
    """

    def __init__(
        self,
        data_set: str | None,
        period: str,
        org_unit: str | None,
        *,
        items: ItemReferences,
        layout: ItemLayout | None = None,
        attribute_option_combo: str | None = None,
        round_off: bool = False,
        complete_date: date | str | None = None,
    ) -> None:
        super().__init__(
            data_set,
            period,
            org_unit,
            attribute_option_combo=attribute_option_combo,
            round_off=round_off,
            complete_date=complete_date,
        )
        self.items = items
        self.layout = layout
        self.strict_category_option_combos = layout is not None
        self.skipped: list[SkippedItem] = []

    def add_item(
        self,
        item: Item,
        value: NumberLike,
        *,
        measure: str | None = None,
        category_option_combo: str | None = None,
        attribute_option_combo: str | None = None,
        comment: str | None = None,
    ) -> bool:
        """Add the value of one item (or of one measure of it, under a layout).

        Returns:
            True when added; False (and an entry in :attr:`skipped`) when left out.

        Raises:
            ConfigError: ``measure`` without a layout, no ``measure`` under one, a measure
                name the layout does not have, or ``category_option_combo`` under a layout
                (the layout chooses the combo).
            InvalidValueError: the value is not a finite number.
            DuplicateValueError: this data element and combo were already added.
            Dhis2Error: the layout's metadata look-up failed (first use only).
        """
        if self.layout is None and measure is None:
            return self._add_by_reference(
                item, value, category_option_combo, attribute_option_combo, comment
            )
        layout = self._require_layout(measure, category_option_combo)
        assert measure is not None  # checked by _require_layout
        if not item.include_in_dhis2_push:
            self.skipped.append(SkippedItem(item, "not included in DHIS2 data push", measure))
            return False
        try:
            cell = layout.cell(item, measure)
        except UnknownReferenceError as exc:
            self.skipped.append(SkippedItem(item, str(exc), measure))
            return False
        ref = cell.data_element.ref_in(self.items.id_scheme)
        if ref is None:
            reason = f"data element {cell.data_element.label} has no code"
            self.skipped.append(SkippedItem(item, reason, measure))
            return False
        combo = cell.category_option_combo
        combo_uid = None if combo is None else combo.uid
        self.add(
            ref,
            value,
            category_option_combo=combo_uid,
            attribute_option_combo=attribute_option_combo,
            comment=comment,
        )
        return True

    def add_stock(self, values: Mapping[Item, Mapping[str, NumberLike]]) -> int:
        """Add every measure of every item, ``{item: {"stock_on_hand": 610, ...}}``.

        A value that cannot be sent (not a number, or a data element and combo already added)
        is kept in :attr:`rejected` (named ``<item code> <measure>``) instead of failing the
        rest, as :meth:`add_rows` keeps a bad row: a push with a preflight then sends nothing.
        Items left out on purpose (not in the DHIS2 push, no cell in the layout) are listed in
        :attr:`skipped`.

        Returns:
            How many values were added.

        Raises:
            ConfigError: no layout, or a measure name the layout does not have.
            Dhis2Error: the layout's metadata look-up failed.
        """
        added = 0
        for item, measures in values.items():
            for measure, value in measures.items():
                try:
                    added += self.add_item(item, value, measure=measure)
                except InvalidValueError as exc:  # a DuplicateValueError is one too
                    self.rejected.append(RejectedRow(f"{item.code} {measure}", exc))
        return added

    def _add_by_reference(
        self,
        item: Item,
        value: NumberLike,
        combo: str | None,
        attribute_option_combo: str | None,
        comment: str | None,
    ) -> bool:
        """The layout-less rule: the item's reference is the data element."""
        if not item.include_in_dhis2_push:
            self.skipped.append(SkippedItem(item, "not included in DHIS2 data push"))
            return False
        ref = self.items.dhis2_ref(item)
        if ref is None:
            self.skipped.append(SkippedItem(item, f"its {self.items.item_field} is empty"))
            return False
        self.add(
            ref,
            value,
            category_option_combo=combo,
            attribute_option_combo=attribute_option_combo,
            comment=comment,
        )
        return True

    def _require_layout(self, measure: str | None, combo: str | None) -> ItemLayout:
        """The layout, when the call fits it."""
        if self.layout is None:
            raise ConfigError(
                f"add_item(measure={measure!r}) needs a data set layout: name the measures "
                "in the [data_set] section (docs/layouts.md)"
            )
        if measure is None:
            raise ConfigError(
                "the data set has a layout: name the measure, one of "
                f"{', '.join(map(repr, self.layout.measures))}"
            )
        if combo is not None:
            raise ConfigError(
                "category_option_combo cannot be given with a data set layout: the layout "
                "chooses the combo of each measure"
            )
        return self.layout


def _check_chunk_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"chunk size must be a whole number of at least 1, got {size!r}")


def _chunks(head: JsonObject, rows: Sequence[JsonValue], size: int) -> Iterator[NamedChunk]:
    """Chunks of a ready payload; its rows are named by their index in ``dataValues``."""
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        yield data_value_set(head, list(part)), [f"row {start + i}" for i in range(len(part))]


class Preflight(Protocol):
    """A check run on a whole push before its first chunk is sent; it raises to send nothing.

    :class:`dhis2_lmis.lmis.checks.Preflight` is the library's; :func:`push_data_value_set` calls
    it once, with every chunk and the names of its rows, and with the rows the builder refused
    (:attr:`DataValueSetBuilder.rejected`), so one error can list every problem of the push.
    """

    def __call__(self, chunks: Sequence[NamedChunk], refused: Sequence[RejectedRow]) -> None:
        """Raise (e.g. :class:`~dhis2_lmis.errors.PreflightError`) if anything would be lost."""


class JsonResponseLike(Protocol):
    """What :func:`push_data_value_set` reads from a response (``session.JsonResponse``)."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> JsonValue: ...


class SupportsPostJson(Protocol):
    """The part of :class:`~dhis2_lmis.dhis2.session.Dhis2Session` a push needs."""

    def post_json(
        self,
        path: str,
        payload: JsonObject | bytes,
        *,
        params: Mapping[str, str] | None = None,
        idempotent: bool = False,
        accept_status: tuple[int, ...] = (),
    ) -> JsonResponseLike: ...


def _named(summary: ImportSummary, names: Sequence[str]) -> ImportSummary:
    """The chunk's summary with each conflict's rows named as the caller knows them."""
    if not summary.conflicts:
        return summary
    conflicts = tuple(
        attrs.evolve(c, rows=tuple(names[i] for i in c.indexes if 0 <= i < len(names)))
        for c in summary.conflicts
    )
    return attrs.evolve(summary, conflicts=conflicts)


def push_data_value_set(
    session: SupportsPostJson,
    payload_or_builder: DataValueSetBuilder | Mapping[str, JsonValue],
    *,
    dry_run: bool = False,
    import_strategy: ImportStrategy = "CREATE_AND_UPDATE",
    id_scheme: Literal["UID", "CODE"] = "UID",
    chunk_size: int = 10_000,
    preflight: Preflight | None = None,
) -> ImportSummary:
    """Send a data value set in chunks and return one summary for the whole push.

    Every chunk is a synchronous import (``async=false``) marked idempotent (data value imports
    are upserts, so a retried chunk cannot double anything). 2.38+ answer conflicts with HTTP 409
    and a summary, which is a result here, not an error. Conflict indexes are positions in the
    whole push, and each conflict carries the rows it refers to with the top-level period, org
    unit and attribute option combo filled in. A builder with
    ``strict_category_option_combos`` asks DHIS2 to refuse combos foreign to their data element.

    Args:
        session: a :class:`~session.Dhis2Session` (anything with its ``post_json``).
        payload_or_builder: a builder, or a ready payload with a ``dataValues`` list.
        dry_run: ask DHIS2 to validate without saving.
        import_strategy: DHIS2's ``importStrategy``.
        id_scheme: how data elements are identified (``dataElementIdScheme``).
        chunk_size: most values per request.
        preflight: called once with every chunk (and the builder's refused rows) before the
            first is sent; it raises to abort with nothing sent. Without one, the rows a
            builder refused stay in its ``rejected`` list and the others are sent.

    Returns:
        The merged summary; an empty SUCCESS summary when there was nothing to send.

    Raises:
        ImportFailedError: DHIS2 aborted a chunk (status ERROR); ``summary`` holds everything
            merged so far, including that chunk, and earlier chunks stay imported.
        ConfigError: ``chunk_size`` below 1 or a payload without ``dataValues``.
        ResponseFormatError: a response that is not an import summary.
        Dhis2Error: any error of ``session.post_json`` (connection, authentication, ...).
    """
    _check_chunk_size(chunk_size)
    refused: Sequence[RejectedRow] = ()
    strict = False
    if isinstance(payload_or_builder, DataValueSetBuilder):
        strict = payload_or_builder.strict_category_option_combos
        data_set = payload_or_builder.data_set
        total = len(payload_or_builder)
        named: Iterable[_Chunk] = payload_or_builder._chunks(chunk_size)
        refused = payload_or_builder.rejected
    else:
        rows = payload_values(payload_or_builder)
        head = payload_head(payload_or_builder)
        data_set = _text_or_none(head, DATA_SET)
        total = len(rows)
        named = _chunks(head, rows, chunk_size)
    chunk_count = -(-total // chunk_size)
    if preflight is not None:
        # every chunk is checked, as JSON objects, before the first is sent
        checked = [(_as_json(chunk), names) for chunk, names in named]
        preflight(checked, refused)
        named = checked
    params = import_params(
        dry_run=dry_run,
        import_strategy=import_strategy,
        data_element_id_scheme=id_scheme,
        strict_category_option_combos=strict,
        # Without it DHIS2 stores a weekly period's values for a monthly data set, where none
        # of the data set's forms or reports read them.
        strict_periods=bool(data_set),
    )
    parts: list[tuple[ImportSummary, int]] = []
    offset = 0
    for number, (chunk, names) in enumerate(named, start=1):
        # Encoded straight from the chunk's rows: one chunk of JSON exists at a time.
        body = _json.dumps(chunk)
        sent = effective_rows(chunk)
        response = session.post_json(
            PATH, body, params=params, idempotent=True, accept_status=(409,)
        )
        del body
        summary = _named(
            parse_import_summary(response.body, payload_values=sent, dry_run=dry_run), names
        )
        parts.append((summary, offset))
        log.info(
            "data value set chunk %d/%d (%d values): %s, %d imported, %d updated, %d ignored",
            number,
            chunk_count,
            len(sent),
            summary.status,
            summary.imported,
            summary.updated,
            summary.ignored,
        )
        if summary.status == "ERROR":
            merged = merge_summaries(parts)
            done = "validated (dry run)" if dry_run else "imported"
            earlier = f"; the {number - 1} earlier chunk(s) were {done}" if number > 1 else ""
            raise ImportFailedError(
                f"DHIS2 aborted the data value import at chunk {number} of {chunk_count} "
                f"(values {offset}-{offset + len(sent) - 1}): "
                f"{summary.description or 'no reason given'}{earlier}",
                summary=merged,
                method="POST",
                path=f"/api/{PATH}",
                status=response.status,
            )
        offset += len(sent)
        del chunk, names, sent  # the next chunk is built while none of this one is held
    return merge_summaries(parts)
