"""The data value set format of ``/api/dataValueSets``: DHIS2's names for it, in one place.

Everything the library writes to or reads from that endpoint goes through here (WEB_API.md §6):
the payload a push sends (its header, its rows as :class:`WireRow`, ``{"dataValues": [...]}``),
the query parameters of ``POST`` (the import options) and of ``GET`` (which values to read), a
payload read back (the rows with the header's period, org unit and attribute option combo filled
in, for the preflight and the import answer reader), and the answers of ``GET``. The LMIS layer
calls these functions; when it reads a payload a user wrote in DHIS2's own shape, it names the
keys with the constants below, so no module above the protocol spells one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias, overload

import msgspec

from dhis2_lmis.dhis2._json import JsonObject, JsonValue, as_text
from dhis2_lmis.dhis2.session import ParamValue
from dhis2_lmis.errors import ConfigError

__all__ = [
    "ATTRIBUTE_OPTION_COMBO",
    "CATEGORY_OPTION_COMBO",
    "COMMENT",
    "COMPLETE_DATE",
    "DATA_ELEMENT",
    "DATA_SET",
    "DATA_VALUES",
    "LAST_UPDATED",
    "ORG_UNIT",
    "PATH",
    "PERIOD",
    "VALUE",
    "DataValueRow",
    "WireRow",
    "data_value_rows",
    "data_value_set",
    "data_value_set_header",
    "effective_rows",
    "import_params",
    "payload_head",
    "payload_header",
    "payload_values",
    "read_params",
    "read_query",
]

PATH = "dataValueSets"
"""The endpoint, below ``/api/``, for both pushing and reading."""

DATA_SET = "dataSet"
COMPLETE_DATE = "completeDate"
PERIOD = "period"
ORG_UNIT = "orgUnit"
ATTRIBUTE_OPTION_COMBO = "attributeOptionCombo"
DATA_VALUES = "dataValues"
DATA_ELEMENT = "dataElement"
CATEGORY_OPTION_COMBO = "categoryOptionCombo"
VALUE = "value"
COMMENT = "comment"
LAST_UPDATED = "lastUpdated"

# Header keys a row inherits when it leaves them out.
_INHERITED = (PERIOD, ORG_UNIT, ATTRIBUTE_OPTION_COMBO)


# -------------------------------------------------------------------------------- writing a push


class WireRow(
    msgspec.Struct,
    rename={
        "data_element": DATA_ELEMENT,
        "category_option_combo": CATEGORY_OPTION_COMBO,
        "attribute_option_combo": ATTRIBUTE_OPTION_COMBO,
        "org_unit": ORG_UNIT,
        "period": PERIOD,
        "value": VALUE,
        "comment": COMMENT,
    },
    omit_defaults=True,
    gc=False,
):
    """One data value of a push, in DHIS2's names; None fields are left out of the JSON.

    A third of a dict's size, and encoded without a dict in between: a builder makes one per
    pushed value, positionally, in the order of the fields below.
    """

    data_element: str
    category_option_combo: str | None = None
    attribute_option_combo: str | None = None
    org_unit: str | None = None
    period: str | None = None
    value: str | None = None
    comment: str | None = None


def payload_header(
    *,
    data_set: str | None,
    complete_date: str | None,
    period: str,
    org_unit: str | None,
    attribute_option_combo: str | None,
) -> JsonObject:
    """The top-level fields of a push, which every row without its own inherits; None is left
    out (DHIS2 then reads the default attribute option combo)."""
    head: JsonObject = {}
    if data_set is not None:
        head[DATA_SET] = data_set
    if complete_date is not None:
        head[COMPLETE_DATE] = complete_date
    head[PERIOD] = period
    if org_unit is not None:
        head[ORG_UNIT] = org_unit
    if attribute_option_combo is not None:
        head[ATTRIBUTE_OPTION_COMBO] = attribute_option_combo
    return head


def data_value_set(head: Mapping[str, object], rows: Sequence[object]) -> dict[str, Any]:
    """A payload (or one chunk of it): ``head`` followed by ``rows`` as its ``dataValues``.

    JSON when the rows are JSON; a push's chunks hold :class:`WireRow` structures instead.
    """
    return {**head, DATA_VALUES: rows}


def import_params(
    *,
    dry_run: bool,
    import_strategy: str,
    data_element_id_scheme: str,
    strict_category_option_combos: bool,
    strict_periods: bool,
) -> dict[str, str]:
    """The query parameters of a synchronous ``POST /api/dataValueSets`` (WEB_API.md §6.2).

    ``async=false`` is sent as the literal text. ``strict_category_option_combos`` makes DHIS2
    refuse a combo foreign to its data element; ``strict_periods`` a period of another type
    than the data set's (both are stored where no form reads them otherwise).
    """
    params = {
        "dryRun": "true" if dry_run else "false",
        "importStrategy": import_strategy,
        "dataElementIdScheme": data_element_id_scheme,
        "async": "false",
    }
    if strict_category_option_combos:
        params["strictCategoryOptionCombos"] = "true"
    if strict_periods:
        params["strictPeriods"] = "true"
    return params


# ------------------------------------------------------------------ reading a payload back


def payload_values(payload: Mapping[str, JsonValue]) -> list[JsonValue]:
    """The ``dataValues`` of a payload a caller wrote.

    Raises:
        ConfigError: the payload has no ``dataValues`` list.
    """
    rows = payload.get(DATA_VALUES)
    if not isinstance(rows, list):
        raise ConfigError(f"a data value set payload needs a {DATA_VALUES!r} list")
    return rows


def payload_head(payload: Mapping[str, JsonValue]) -> JsonObject:
    """Everything of a payload but its rows: what each chunk of it repeats."""
    return {k: v for k, v in payload.items() if k != DATA_VALUES}


def effective_rows(chunk: Mapping[str, object]) -> Sequence[JsonObject]:
    """A payload's rows as JSON objects, each with the header's period, org unit and attribute
    option combo filled in where it names none: the values as DHIS2 will read them.

    Built one at a time, when asked for (a clean push never copies its rows); each is a fresh
    dict, whether the row was a :class:`WireRow` or a dict. A row that is no object reads as
    ``{"value": row}``; rows that are no list read as none.
    """
    return _EffectiveRows(chunk)


class _EffectiveRows(Sequence[JsonObject]):
    def __init__(self, chunk: Mapping[str, object]) -> None:
        rows = chunk.get(DATA_VALUES)
        self._rows: list[object] = rows if isinstance(rows, list) else []
        self._chunk = chunk

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
        full: JsonObject = row if isinstance(row, dict) else {VALUE: row}
        for key in _INHERITED:
            if key not in full and key in self._chunk:
                full[key] = self._chunk[key]  # type: ignore[assignment]  # a JSON value
        return full


# ----------------------------------------------------------------------------- reading values


def read_params(
    *,
    data_set: str,
    data_element_id_scheme: str,
    org_unit_id_scheme: str,
    category_option_combo_id_scheme: str,
    last_updated: str | None = None,
) -> dict[str, ParamValue]:
    """The parameters every ``GET /api/dataValueSets`` of one read shares (WEB_API.md §6.6).

    The id schemes say how the answer names data elements, org units and category option
    combos; ``last_updated`` (already formatted, server-local) keeps values updated since.
    """
    params: dict[str, ParamValue] = {
        DATA_SET: data_set,
        "dataElementIdScheme": data_element_id_scheme,
        "orgUnitIdScheme": org_unit_id_scheme,
        "categoryOptionComboIdScheme": category_option_combo_id_scheme,
    }
    if last_updated is not None:
        params[LAST_UPDATED] = last_updated
    return params


def read_query(
    params: Mapping[str, ParamValue],
    *,
    period: str | None = None,
    org_units: Sequence[str] | None = None,
) -> dict[str, ParamValue]:
    """``params`` with the period and the (repeated) org units of one request, when given.

    Requests name org units by UID, whatever ``orgUnitIdScheme`` says of the answer.
    """
    query = dict(params)
    if period is not None:
        query[PERIOD] = period
    if org_units is not None:
        query[ORG_UNIT] = org_units
    return query


DataValueRow: TypeAlias = tuple[
    str | None, str | None, str | None, str | None, str | None, str | None, str | None
]
"""One data value of a ``GET /api/dataValueSets`` answer, as text:
``(org_unit, period, data_element, category_option_combo, value, last_updated,
attribute_option_combo)``.

A plain tuple because a month of a national data set is hundreds of thousands of values: the
reader groups and converts them, and a record per row would only be thrown away.
"""


def data_value_set_header(body: JsonValue) -> tuple[str | None, str | None, str | None]:
    """``(period, org_unit, complete_date)`` named at the top of a data value set, if any.

    DHIS2 writes them only when the request named one data set, one period and one org unit
    without children (2.28, 2.41 recordings); answers for date ranges or several org units are
    a bare ``{"dataValues": [...]}`` (2.36, 2.37, 2.40 recordings). ``completeDate`` is a date
    in some versions and a timestamp in others; it is returned as sent.
    """
    if not isinstance(body, dict):
        return None, None, None
    get = body.get
    return as_text(get(PERIOD)), as_text(get(ORG_UNIT)), as_text(get(COMPLETE_DATE))


def data_value_rows(body: JsonValue) -> Iterator[DataValueRow]:
    """Every data value of a ``GET /api/dataValueSets`` answer of any version; never raises.

    Reads ``{"dataValues": [...]}`` with or without the top-level ``dataSet``, ``period`` and
    ``orgUnit`` (a value without its own period or org unit takes the top-level one), an
    answer with no ``dataValues`` key (no data), and a bare JSON list of values. Values are
    text, as DHIS2 stores them; a number sent unquoted becomes its text. An entry that is not
    an object yields a row of Nones, so the reader can report it rather than lose it.
    """
    top_period = top_org_unit = top_aoc = None
    if isinstance(body, dict):
        values = body.get(DATA_VALUES)
        top_period, top_org_unit = as_text(body.get(PERIOD)), as_text(body.get(ORG_UNIT))
        top_aoc = as_text(body.get(ATTRIBUTE_OPTION_COMBO))
    else:
        values = body
    if not isinstance(values, list):
        return
    for raw in values:
        if type(raw) is not dict:
            yield (top_org_unit, top_period, None, None, None, None, top_aoc)
            continue
        get = raw.get
        org_unit, period, element = get(ORG_UNIT), get(PERIOD), get(DATA_ELEMENT)
        combo, value, updated = get(CATEGORY_OPTION_COMBO), get(VALUE), get(LAST_UPDATED)
        aoc = get(ATTRIBUTE_OPTION_COMBO)
        yield (
            org_unit if type(org_unit) is str else _or_text(org_unit, top_org_unit),
            period if type(period) is str else _or_text(period, top_period),
            element if type(element) is str else _or_text(element, None),
            combo if type(combo) is str else _or_text(combo, None),
            value if type(value) is str else _or_text(value, None),
            updated if type(updated) is str else _or_text(updated, None),
            aoc if type(aoc) is str else _or_text(aoc, top_aoc),
        )


def _or_text(value: JsonValue, default: str | None) -> str | None:
    """A row's field as text (:func:`~dhis2_lmis.dhis2._json.as_text`), or the header's."""
    return default if value is None else as_text(value)
