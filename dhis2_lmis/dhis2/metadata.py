"""DHIS2 metadata objects as the library reads them, and the one reader of their JSON.

The resolvers (data element and org unit look-ups) and the setup checks (programs with their
stages, data sets with their elements and org units) ask for the same objects; this module
holds their records, the ``fields`` each request asks for, and the functions that turn the
answers into records, so one data element is read the same way wherever it comes from.
A metadata answer without the properties asked for raises :class:`ResponseFormatError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.errors import ResponseFormatError

__all__ = [
    "CATEGORY_OPTION_COMBOS",
    "CATEGORY_OPTION_COMBO_FIELDS",
    "DATA_ELEMENTS",
    "DATA_ELEMENT_FIELDS",
    "DATA_SETS",
    "DATA_SET_FIELDS",
    "DATA_SET_ORG_UNITS_FIELDS",
    "LAYOUT_DATA_ELEMENT_FIELDS",
    "ORG_UNITS",
    "ORG_UNIT_FIELDS",
    "PROGRAM_FIELDS",
    "USER_AUTHORITIES_FIELDS",
    "USER_ORG_UNITS_FIELDS",
    "CategoryOptionComboInfo",
    "DataElementInfo",
    "DataSetInfo",
    "InputPeriod",
    "MetadataRef",
    "OrgUnitInfo",
    "ProgramInfo",
    "ProgramStageInfo",
    "json_object",
    "json_objects",
    "json_text",
    "parse_category_option_combo",
    "parse_data_element",
    "parse_data_set",
    "parse_org_unit",
    "parse_program",
]

# The metadata collections read: each name is both the API path and the key of its list.
DATA_ELEMENTS = "dataElements"
ORG_UNITS = "organisationUnits"
CATEGORY_OPTION_COMBOS = "categoryOptionCombos"
DATA_SETS = "dataSets"

DATA_ELEMENT_FIELDS = "id,code,name,valueType,zeroIsSignificant"
ORG_UNIT_FIELDS = "id,code,name,path,level"
LAYOUT_DATA_ELEMENT_FIELDS = f"{DATA_ELEMENT_FIELDS},categoryCombo[id]"
"""Data elements as a data set layout needs them: with the category combo their measures
(category option combos) must belong to."""
CATEGORY_OPTION_COMBO_FIELDS = "id,code,name,categoryCombo[id]"
PROGRAM_FIELDS = (
    "id,code,name,programType,"
    f"programStages[id,code,name,programStageDataElements[dataElement[{DATA_ELEMENT_FIELDS}]]],"
    "programTrackedEntityAttributes[trackedEntityAttribute[id,code,name]]"
)
_COMBOS = "categoryCombo[id,categoryOptionCombos[id,code,name]]"
# What a data set's elements need for the push preflight: option codes and option combos.
_ELEMENT_RULES = f"optionSet[options[code]],{_COMBOS}"
USER_ORG_UNITS_FIELDS = "organisationUnits[id]"
"""``/api/me`` as the data set reader needs it: the user's data capture roots."""
USER_AUTHORITIES_FIELDS = "authorities"
"""``/api/me`` as the preflight needs it: may the user edit expired periods."""
DATA_SET_ORG_UNITS_FIELDS = "organisationUnits[id,code,path]"
"""A data set's assigned org units with their paths (to keep those below some roots)."""
DATA_SET_FIELDS = (
    "id,code,name,periodType,expiryDays,openFuturePeriods,"
    f"dataInputPeriods[period,openingDate,closingDate],{_COMBOS},"
    f"dataSetElements[dataElement[{DATA_ELEMENT_FIELDS},{_ELEMENT_RULES}]],"
    "organisationUnits[id,code,name]"
)


class _Identified:
    """What every identifiable metadata record answers from its ``uid``, ``code`` and ``name``:
    one definition for the records below, which declare those three fields themselves."""

    __slots__ = ()
    uid: str
    code: str | None
    name: str

    @property
    def label(self) -> str:
        """``name (code)`` for messages."""
        return f"{self.name} ({self.code or self.uid})" if self.name else self.uid

    def known_as(self, ref: str | None) -> bool:
        """Whether ``ref`` is this object's UID or code."""
        return bool(ref) and ref in (self.uid, self.code)


@attrs.frozen
class MetadataRef(_Identified):
    """An identifiable object (attribute, org unit, stage, program) named by UID and code."""

    uid: str
    code: str | None
    name: str


@attrs.frozen
class DataElementInfo(_Identified):
    """A data element: its identifiers, value type and whether zeros are stored.

    ``zero_is_significant`` is None when the server did not say; ``category_combo`` (a UID)
    is known only when asked for (:data:`LAYOUT_DATA_ELEMENT_FIELDS`, :data:`DATA_SET_FIELDS`).
    ``options`` holds the codes of its option set (None: no option set, or not asked);
    ``option_combos`` the category option combos of its category combo (empty: not asked).
    """

    uid: str
    code: str | None
    name: str
    value_type: str = ""
    zero_is_significant: bool | None = None
    category_combo: str | None = None
    options: frozenset[str] | None = None
    option_combos: tuple[MetadataRef, ...] = ()

    def ref_in(self, scheme: Literal["CODE", "UID"]) -> str | None:
        """The identifier in ``scheme`` (None when it has no code)."""
        return self.code if scheme == "CODE" else self.uid


@attrs.frozen
class CategoryOptionComboInfo(_Identified):
    """A category option combo (a measure or an item in a data set layout) and its combo."""

    uid: str
    code: str | None
    name: str
    category_combo: str | None = None


@attrs.frozen
class OrgUnitInfo:
    """An organisation unit with its place in the hierarchy."""

    uid: str
    code: str | None
    name: str
    path: str
    level: int | None


@attrs.frozen
class ProgramStageInfo:
    """A program stage and its data elements."""

    ref: MetadataRef
    elements: tuple[DataElementInfo, ...]


@attrs.frozen
class ProgramInfo:
    """A program: its type, stages and tracked entity attributes."""

    ref: MetadataRef
    program_type: str
    stages: tuple[ProgramStageInfo, ...]
    attributes: tuple[MetadataRef, ...]

    def element(self, ref: str) -> DataElementInfo | None:
        """The data element of any stage known as ``ref``."""
        return next((e for s in self.stages for e in s.elements if e.known_as(ref)), None)


@attrs.frozen
class InputPeriod:
    """A data input period of a data set: when values of ``period`` may be entered.

    A missing opening or closing date leaves that side open.
    """

    period: str
    opening: datetime | None
    closing: datetime | None


@attrs.frozen
class DataSetInfo:
    """A data set: its period type, data elements and assigned org units.

    The rest says which values DHIS2 takes when: ``attribute_combos`` are the attribute option
    combos of its category combo (empty: not asked); ``expiry_days`` how many days after a
    period ends it stays open (0: always); ``open_future_periods`` how many periods after the
    current one are open (None: not told); ``input_periods``, when any, the only windows open.
    """

    ref: MetadataRef
    period_type: str
    elements: tuple[DataElementInfo, ...]
    org_units: tuple[MetadataRef, ...]
    attribute_combos: tuple[MetadataRef, ...] = ()
    expiry_days: int = 0
    open_future_periods: int | None = None
    input_periods: tuple[InputPeriod, ...] = ()

    def assigned(self, org_unit: str, scheme: Literal["CODE", "UID"] | None = None) -> bool:
        """Whether ``org_unit`` (in ``scheme``, or either when None) is assigned."""
        if scheme is None:
            return any(o.known_as(org_unit) for o in self.org_units)
        return any((o.code if scheme == "CODE" else o.uid) == org_unit for o in self.org_units)


def _bad(path: str, why: str) -> ResponseFormatError:
    return ResponseFormatError(why, method="GET", path=path)


def json_object(raw: JsonValue, path: str, what: str) -> JsonObject:
    """``raw`` as a JSON object, or :class:`ResponseFormatError` naming ``what``."""
    if not isinstance(raw, dict):
        raise _bad(path, f"{what} is not a JSON object")
    return raw


def json_objects(obj: JsonObject, key: str, path: str) -> list[JsonObject]:
    """The objects in list ``key``; a missing list is empty (DHIS2 omits empty collections)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(path, f"{key!r} is not a list")
    return [json_object(v, path, f"an entry of {key!r}") for v in value]


def json_text(obj: JsonObject, key: str) -> str | None:
    """``obj[key]`` when it is a non-empty string, else None."""
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _ref(obj: JsonObject, path: str) -> MetadataRef:
    uid = json_text(obj, "id")
    if uid is None:
        raise _bad(path, "a metadata object has no 'id'")
    return MetadataRef(uid, json_text(obj, "code"), json_text(obj, "name") or "")


def _option_combos(obj: JsonObject, path: str) -> tuple[MetadataRef, ...]:
    """The option combos of ``obj``'s ``categoryCombo`` (empty when not there)."""
    combo = obj.get("categoryCombo")
    if not isinstance(combo, dict):
        return ()
    return tuple(_ref(c, path) for c in json_objects(combo, CATEGORY_OPTION_COMBOS, path))


def _options(obj: JsonObject, path: str) -> frozenset[str] | None:
    option_set = obj.get("optionSet")
    if not isinstance(option_set, dict):
        return None
    return frozenset(
        code for o in json_objects(option_set, "options", path) if (code := json_text(o, "code"))
    )


def parse_data_element(obj: JsonObject, path: str = "/api/dataElements") -> DataElementInfo:
    """A data element object (fields :data:`DATA_ELEMENT_FIELDS`, and within a data set its
    option set and option combos)."""
    ref = _ref(obj, path)
    zero = obj.get("zeroIsSignificant")
    return DataElementInfo(
        ref.uid,
        ref.code,
        ref.name,
        json_text(obj, "valueType") or "",
        zero if isinstance(zero, bool) else None,
        _category_combo(obj),
        options=_options(obj, path),
        option_combos=_option_combos(obj, path),
    )


def _category_combo(obj: JsonObject) -> str | None:
    combo = obj.get("categoryCombo")
    return json_text(combo, "id") if isinstance(combo, dict) else None


def parse_category_option_combo(
    obj: JsonObject, path: str = "/api/categoryOptionCombos"
) -> CategoryOptionComboInfo:
    """A category option combo object (fields :data:`CATEGORY_OPTION_COMBO_FIELDS`)."""
    ref = _ref(obj, path)
    return CategoryOptionComboInfo(ref.uid, ref.code, ref.name, _category_combo(obj))


def parse_org_unit(obj: JsonObject, path: str = "/api/organisationUnits") -> OrgUnitInfo:
    """An organisation unit object (fields :data:`ORG_UNIT_FIELDS`)."""
    ref = _ref(obj, path)
    level = obj.get("level")
    return OrgUnitInfo(
        ref.uid,
        ref.code,
        ref.name,
        json_text(obj, "path") or "",
        level if isinstance(level, int) and not isinstance(level, bool) else None,
    )


def _nested(rows: list[JsonObject], key: str, path: str) -> list[JsonObject]:
    """``row[key]`` of each row that has one (``dataElement`` inside ``dataSetElements``)."""
    return [json_object(r[key], path, key) for r in rows if r.get(key) is not None]


def parse_program(raw: JsonValue, path: str) -> ProgramInfo:
    """A program answer (fields :data:`PROGRAM_FIELDS`)."""
    obj = json_object(raw, path, "the program")
    stages = tuple(
        ProgramStageInfo(
            _ref(stage, path),
            tuple(
                parse_data_element(de, path)
                for de in _nested(
                    json_objects(stage, "programStageDataElements", path), "dataElement", path
                )
            ),
        )
        for stage in json_objects(obj, "programStages", path)
    )
    attributes = tuple(
        _ref(tea, path)
        for tea in _nested(
            json_objects(obj, "programTrackedEntityAttributes", path),
            "trackedEntityAttribute",
            path,
        )
    )
    return ProgramInfo(_ref(obj, path), json_text(obj, "programType") or "", stages, attributes)


def parse_data_set(raw: JsonValue, path: str) -> DataSetInfo:
    """A data set answer (fields :data:`DATA_SET_FIELDS`)."""
    obj = json_object(raw, path, "the data set")
    elements = tuple(
        parse_data_element(de, path)
        for de in _nested(json_objects(obj, "dataSetElements", path), "dataElement", path)
    )
    org_units = tuple(_ref(o, path) for o in json_objects(obj, ORG_UNITS, path))
    future = obj.get("openFuturePeriods")
    return DataSetInfo(
        _ref(obj, path),
        json_text(obj, "periodType") or "",
        elements,
        org_units,
        attribute_combos=_option_combos(obj, path),
        expiry_days=_count(obj.get("expiryDays")) or 0,
        open_future_periods=_count(future),
        input_periods=tuple(_input_period(p) for p in json_objects(obj, "dataInputPeriods", path)),
    )


def _count(value: JsonValue) -> int | None:
    """A whole number DHIS2 sent as a number (or numeric text); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, str)):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _input_period(obj: JsonObject) -> InputPeriod:
    """``{"period": {"id": "202401"}, "openingDate": ..., "closingDate": ...}``; the period may
    also come as its bare id."""
    period = obj.get("period")
    period_id = json_text(period, "id") if isinstance(period, dict) else period
    return InputPeriod(
        period_id if isinstance(period_id, str) else "",
        _when(json_text(obj, "openingDate")),
        _when(json_text(obj, "closingDate")),
    )


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None
