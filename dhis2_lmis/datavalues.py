"""Building and pushing aggregate data value sets (``POST /api/dataValueSets``).

The builder turns LMIS numbers into the strings DHIS2 stores, refuses what DHIS2 would store
wrongly (``NaN``, ``1e+3``, ``True``), catches the same value given twice before the server does,
and splits big pushes into chunks. :func:`push_data_value_set` sends the chunks and folds their
import summaries into one, with every conflict pointing back at the caller's rows.

Period arguments here are already-formatted period ids; :func:`dhis2_lmis.periods.format_period`
makes them from dates.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, overload

import attrs
import msgspec

from dhis2_lmis import _json
from dhis2_lmis._json import JsonObject, JsonValue
from dhis2_lmis.errors import (
    ConfigError,
    DuplicateValueError,
    ImportFailedError,
    InvalidValueError,
)
from dhis2_lmis.imports import ImportSummary, merge_summaries, parse_import_summary

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from dhis2_lmis.references import Item

__all__ = [
    "DataValueSetBuilder",
    "DuplicateValueError",
    "ImportStrategy",
    "ImportSummary",
    "InvalidValueError",
    "ItemReferences",
    "ItemValueSetBuilder",
    "JsonResponseLike",
    "NumberLike",
    "Preflight",
    "SkippedItem",
    "SupportsPostJson",
    "format_value",
    "push_data_value_set",
]

log = logging.getLogger(__name__)

_Key: TypeAlias = "tuple[str, str | None, str, str]"
ImportStrategy = Literal["CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE"]
Preflight = Callable[[JsonObject], None]
NumberLike: TypeAlias = "int | float | Decimal | str"

_NUMERIC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Top-level payload keys a row inherits when it leaves them out.
_INHERITED = ("period", "orgUnit", "attributeOptionCombo")


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
    if kind is int:  # fast paths for the common Python numbers; Decimal for everything else
        return str(value)
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]  # checked: a float
        if round_off:
            return str(_round_half_away_from_zero(value))  # type: ignore[arg-type]
        text = repr(value)
        if "e" not in text:
            text = text.removesuffix(".0")
            return "0" if text == "-0" else text
    number = _to_decimal(value, data_element)
    if round_off:
        number = number.to_integral_value(rounding=ROUND_HALF_UP)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def _kept(value: NumberLike, data_element: str, round_off: bool) -> str | int | float:
    """What a builder keeps of a value until its chunk is encoded.

    A finite ``int`` or ``float`` is kept as given (24-28 bytes, or nothing when the caller
    holds it) and formatted when its chunk is encoded, which cannot fail; anything else is
    formatted now, so a bad value still fails :meth:`DataValueSetBuilder.add`.
    """
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    return format_value(value, data_element=data_element, round_off=round_off)


def _round_half_away_from_zero(value: float) -> int:
    """``round`` halves away from zero; ``x - floor(x)`` is exact for floats, so no 0.4999..."""
    floor = math.floor(value)
    fraction = value - floor
    return floor + 1 if fraction > 0.5 or (fraction == 0.5 and value > 0) else floor


def _invalid(value: object, data_element: str, reason: str) -> InvalidValueError:
    return InvalidValueError(
        f"value {value!r} for data element {data_element} cannot be sent: {reason}",
        data_element=data_element,
        value=repr(value),
    )


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


class DataValueSetBuilder:
    """Collects data values into a ``/api/dataValueSets`` payload.

    Top-level ``period``, ``orgUnit`` and ``attributeOptionCombo`` apply to every row; a row
    repeats ``orgUnit`` or ``period`` only when it differs, which keeps payloads small.

    Args:
        data_set: data set UID (or code); None for bulk pushes across data sets.
        period: the default period id (already formatted, e.g. ``"202404"``).
        org_unit: the default org unit; None when every row names its own.
        attribute_option_combo: applies to the whole set; None means the default combo.
        round_off: round every value to a whole number (see :func:`format_value`).
        complete_date: mark the data set complete on this date (needs ``data_set``).

    Example:
        >>> b = DataValueSetBuilder("LmIsDsStck1", "202404", "DiszpKrYNg8")
        >>> b.add("StockOnHnd1", 340)
        >>> b.build()["dataValues"]
        [{'dataElement': 'StockOnHnd1', 'value': '340'}]
    """

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
        self.period = period
        self.org_unit = org_unit
        self.attribute_option_combo = attribute_option_combo
        self.round_off = round_off
        self.complete_date = (
            complete_date.isoformat() if isinstance(complete_date, date) else complete_date
        )
        # (data element, option combo, org unit, period) -> the value (see _kept). One dict
        # keeps the insertion order and refuses duplicates; rows become JSON only a chunk at
        # a time, so a large push holds a key and a number per value, not a dict. The rare
        # comments sit beside it.
        self._values: dict[_Key, str | int | float] = {}
        self._comments: dict[_Key, str] = {}

    def add(
        self,
        data_element: str,
        value: NumberLike,
        *,
        category_option_combo: str | None = None,
        comment: str | None = None,
        org_unit: str | None = None,
        period: str | None = None,
    ) -> None:
        """Add one value.

        Raises:
            InvalidValueError: the value is not a finite number, or no org unit is known for it.
            DuplicateValueError: this data element, option combo, org unit and period were
                already added.
        """
        kept = _kept(value, data_element, self.round_off)
        row_org_unit = org_unit or self.org_unit
        if row_org_unit is None:
            raise _invalid(value, data_element, "no org unit (none given here or to the builder)")
        row_period = period or self.period
        key = (data_element, category_option_combo, row_org_unit, row_period)
        if key in self._values:
            raise DuplicateValueError(
                f"data element {data_element}, category option combo "
                f"{category_option_combo or '(default)'}, org unit {row_org_unit}, period "
                f"{row_period} was already added; DHIS2 would keep only one of them",
                key=key,
                value=repr(value),
            )
        self._values[key] = kept
        if comment is not None:
            self._comments[key] = comment

    def _row(self, key: _Key, kept: str | int | float) -> _WireRow:
        """One value as DHIS2 reads it; org unit and period only when they differ."""
        data_element, combo, org_unit, period = key
        return _WireRow(
            data_element,
            combo,
            None if org_unit == self.org_unit else org_unit,
            None if period == self.period else period,
            kept
            if type(kept) is str
            else format_value(kept, data_element=data_element, round_off=self.round_off),
            self._comments.get(key) if self._comments else None,
        )

    def __len__(self) -> int:
        return len(self._values)

    @property
    def rows(self) -> tuple[JsonObject, ...]:
        """The rows as JSON objects, in the order they were added (fresh each time)."""
        return tuple(msgspec.to_builtins([self._row(k, v) for k, v in self._values.items()]))

    def _header(self) -> JsonObject:
        head: JsonObject = {}
        if self.data_set is not None:
            head["dataSet"] = self.data_set
        if self.complete_date is not None:
            head["completeDate"] = self.complete_date
        head["period"] = self.period
        if self.org_unit is not None:
            head["orgUnit"] = self.org_unit
        if self.attribute_option_combo is not None:
            head["attributeOptionCombo"] = self.attribute_option_combo
        return head

    def build(self) -> JsonObject:
        """Return the whole payload; a fresh dict each time, safe to change."""
        payload = self._header()
        payload["dataValues"] = list(self.rows)
        return payload

    def iter_chunks(self, size: int) -> Iterator[JsonObject]:
        """Yield payloads of at most ``size`` values, each with the full top-level fields.

        Rows are built a chunk at a time, so memory follows the chunk size, not the push.
        Yields nothing when no value was added.

        Raises:
            ConfigError: ``size`` is less than 1.
        """
        _check_chunk_size(size)
        return self._chunks(size)

    def _chunks(self, size: int) -> Iterator[JsonObject]:
        head = self._header()
        for rows in self._row_chunks(size):
            yield {**head, "dataValues": msgspec.to_builtins(rows)}

    def _row_chunks(self, size: int) -> Iterator[list[_WireRow]]:
        """The rows a chunk at a time, as compact structures that encode straight to JSON."""
        values = iter(self._values.items())
        row = self._row
        while rows := [row(k, v) for k, v in itertools.islice(values, size)]:
            yield rows


class _WireRow(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """One data value of a push, in DHIS2's names; None fields are left out of the JSON.

    A third of a dict's size, and encoded without a dict in between.
    """

    data_element: str
    category_option_combo: str | None = None
    org_unit: str | None = None
    period: str | None = None
    value: str | None = None
    comment: str | None = None


class ItemReferences(Protocol):
    """What an item builder needs of an :class:`~dhis2_lmis.references.ItemResolver`."""

    @property
    def item_field(self) -> str:
        """Where items keep their data element reference."""

    def dhis2_ref(self, item: Item) -> str | None:
        """The item's data element code or UID; None when its field is empty."""


@attrs.frozen
class SkippedItem:
    """An item :meth:`ItemValueSetBuilder.add_item` left out, and why."""

    item: Item
    reason: str

    def __str__(self) -> str:
        return f"item {self.item.code} ({self.item.name}) skipped: {self.reason}"


class ItemValueSetBuilder(DataValueSetBuilder):
    """A data value set builder that names data elements by mSupply item.

    The data element comes from the item's reference (``item_field``, in the configured id
    scheme). Items not "included in DHIS2 data push", and items whose reference field is
    empty, are skipped and listed in :attr:`skipped` instead of failing the whole push.

    Args:
        items: resolves an item to its data element reference.

    The other arguments are those of :class:`DataValueSetBuilder`.
    """

    def __init__(
        self,
        data_set: str | None,
        period: str,
        org_unit: str | None,
        *,
        items: ItemReferences,
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
        self.skipped: list[SkippedItem] = []

    def add_item(
        self,
        item: Item,
        value: NumberLike,
        *,
        category_option_combo: str | None = None,
        comment: str | None = None,
    ) -> bool:
        """Add the value of one item; False (and an entry in :attr:`skipped`) when left out.

        Raises:
            InvalidValueError: the value is not a finite number.
            DuplicateValueError: the item's data element was already added.
        """
        if not item.include_in_dhis2_push:
            self.skipped.append(SkippedItem(item, "not included in DHIS2 data push"))
            return False
        ref = self.items.dhis2_ref(item)
        if ref is None:
            self.skipped.append(SkippedItem(item, f"its {self.items.item_field} is empty"))
            return False
        self.add(ref, value, category_option_combo=category_option_combo, comment=comment)
        return True


def _check_chunk_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"chunk size must be a whole number of at least 1, got {size!r}")


def _payload_rows(payload: Mapping[str, JsonValue]) -> list[JsonValue]:
    rows = payload.get("dataValues")
    if not isinstance(rows, list):
        raise ConfigError("a data value set payload needs a 'dataValues' list")
    return rows


class _EffectiveRows(Sequence[JsonObject]):
    """A chunk's rows as JSON objects with inherited top-level fields filled in, built only
    when a conflict asks for one (a clean push never copies its rows)."""

    def __init__(self, head: JsonObject, rows: Sequence[object]) -> None:
        self._rows = rows
        self._head = head

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> JsonObject: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[JsonObject]: ...
    def __getitem__(self, index: int | slice) -> JsonObject | Sequence[JsonObject]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = msgspec.to_builtins(self._rows[index])  # a fresh dict, whatever the row was
        full: JsonObject = row if isinstance(row, dict) else {"value": row}
        for key in _INHERITED:
            if key not in full and key in self._head:
                full[key] = self._head[key]
        return full


class JsonResponseLike(Protocol):
    """What :func:`push_data_value_set` reads from a response (``session.JsonResponse``)."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> JsonValue: ...


class SupportsPostJson(Protocol):
    """The part of :class:`~dhis2_lmis.session.Dhis2Session` a push needs."""

    def post_json(
        self,
        path: str,
        payload: JsonObject | bytes,
        *,
        params: Mapping[str, str] | None = None,
        idempotent: bool = False,
        accept_status: tuple[int, ...] = (),
    ) -> JsonResponseLike: ...


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
    unit and attribute option combo filled in.

    Args:
        session: a :class:`~dhis2_lmis.session.Dhis2Session` (anything with its ``post_json``).
        payload_or_builder: a builder, or a ready payload with a ``dataValues`` list.
        dry_run: ask DHIS2 to validate without saving.
        import_strategy: DHIS2's ``importStrategy``.
        id_scheme: how data elements are identified (``dataElementIdScheme``).
        chunk_size: most values per request.
        preflight: called with every chunk before the first is sent; raise to abort with
            nothing sent (e.g. to check period types or data set membership).

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
    chunks: Iterable[Sequence[object]]
    if isinstance(payload_or_builder, DataValueSetBuilder):
        total = len(payload_or_builder)
        head = payload_or_builder._header()
        chunks = payload_or_builder._row_chunks(chunk_size)
    else:
        rows = _payload_rows(payload_or_builder)
        head = {k: v for k, v in payload_or_builder.items() if k != "dataValues"}
        total = len(rows)
        chunks = (rows[i : i + chunk_size] for i in range(0, total, chunk_size))
    chunk_count = -(-total // chunk_size)
    if preflight is not None:
        chunks = list(chunks)  # every chunk is checked before the first is sent
        for chunk in chunks:
            preflight({**head, "dataValues": msgspec.to_builtins(chunk)})
    params = {
        "dryRun": "true" if dry_run else "false",
        "importStrategy": import_strategy,
        "dataElementIdScheme": id_scheme,
        "async": "false",
    }
    parts: list[tuple[ImportSummary, int]] = []
    offset = 0
    for number, chunk in enumerate(chunks, start=1):
        # Encoded straight from the chunk's rows: one chunk of JSON exists at a time.
        body = _json.dumps({**head, "dataValues": chunk})
        sent = _EffectiveRows(head, chunk)
        response = session.post_json(
            "dataValueSets", body, params=params, idempotent=True, accept_status=(409,)
        )
        del body
        summary = parse_import_summary(response.body, payload_values=sent, dry_run=dry_run)
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
                path="/api/dataValueSets",
                status=response.status,
            )
        offset += len(sent)
    return merge_summaries(parts)
