"""Setup validation and push preflight: find misconfiguration before it silently loses data.

"Test connection" only proves the URL and credentials. Most LMIS failures come later and
quietly: an Order program that is really a tracker program reads nothing, a data element missing
from the STR stage is never written, a data set whose period type differs from ``period_format``
rejects every value, an org unit not assigned to the data set is ignored, and a data element whose
``zeroIsSignificant`` is false makes DHIS2 drop every zero, so stock-outs vanish from reports.

:func:`validate_setup` checks the whole configuration against the server with as few metadata
requests as DHIS2 allows: one per configured program (stages, their data elements and the
program's attributes come nested in one answer), one for the data set (its data elements and
org units nested), and the items' data elements that are not in the data set through the item
resolver's batched, cached look-up. :class:`Preflight` checks every row of a data value set
the way DHIS2 will (value types, option sets, option combos, org units, open periods) before
:func:`~dhis2_lmis.lmis.datavalues.push_data_value_set` sends any of it.

The JSON shapes parsed here (``programs``, ``dataSets`` with nested fields) are read by the
private ``_parse_*`` helpers below; they belong with the other DHIS2 key knowledge in
``convert.py`` and will move there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

import attrs

from dhis2_lmis.config import DataElementMapping, Dhis2Config
from dhis2_lmis.dhis2._clock import utc_now
from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2._uids import IdScheme, is_uid
from dhis2_lmis.dhis2.datavaluesets import (
    ATTRIBUTE_OPTION_COMBO,
    CATEGORY_OPTION_COMBO,
    DATA_ELEMENT,
    DATA_SET,
    ORG_UNIT,
    PERIOD,
    VALUE,
    effective_rows,
)
from dhis2_lmis.dhis2.metadata import (
    DATA_SET_FIELDS,
    DATA_SETS,
    PROGRAM_FIELDS,
    USER_AUTHORITIES_FIELDS,
    CategoryOptionComboInfo,
    DataElementInfo,
    DataSetInfo,
    MetadataRef,
    ProgramInfo,
    json_object,
    json_objects,
    json_text,
    parse_data_set,
    parse_program,
)
from dhis2_lmis.dhis2.periods import (
    Period,
    PeriodError,
    PeriodType,
    parse_period,
    period_for,
    period_type_named,
    period_type_of_format,
)
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.dhis2.valuetypes import VALUE_PROBLEMS, value_problem
from dhis2_lmis.errors import Dhis2Error, NotFoundError
from dhis2_lmis.lmis.datavalues import NamedChunk, RejectedRow
from dhis2_lmis.lmis.models import Customer, Item, Store
from dhis2_lmis.lmis.references import ItemResolver, LayoutResolver, OrgUnitResolver

__all__ = ["Finding", "Preflight", "PreflightError", "Severity", "validate_setup"]

_PERIOD_TYPE_NAMES = frozenset(t.value for t in PeriodType)

log = logging.getLogger(__name__)

Severity = Literal["error", "warning", "info"]
_RANK: Mapping[str, int] = {"error": 0, "warning": 1, "info": 2}
_MAX_ROWS_SHOWN = 10
_ZERO_FIX = (
    "tick 'Store zero data values' (zeroIsSignificant) on the data element in DHIS2 "
    "Maintenance > Data elements"
)


@attrs.frozen
class Finding:
    """One result of a setup check, worded for the person who fixes it.

    Attributes:
        severity: ``"error"`` (this part of the integration cannot work), ``"warning"`` (it
            works but loses or rejects some data) or ``"info"`` (a deliberate gap, such as a
            store without an org unit).
        what: what is wrong, naming the setting and the DHIS2 object.
        how_to_fix: what to change, and where.
        subject: the setting (``"programs.order"``) or record (``"store S-WH"``) concerned.
    """

    severity: Severity
    what: str
    how_to_fix: str
    subject: str | None = None

    def __str__(self) -> str:
        about = f" [{self.subject}]" if self.subject else ""
        return f"{self.severity}{about}: {self.what}; fix: {self.how_to_fix}"


# -- fetching -----------------------------------------------------------------------------------


class PreflightError(Dhis2Error, ValueError):
    """A data value set would lose or have rejected some values; nothing was sent.

    ``findings`` lists every problem found in the push (rows the builder refused, values DHIS2
    would refuse for their value type or option set, zeros it would drop, data elements, option
    combos and org units outside the data set, periods of the wrong type or closed), each naming
    the rows concerned the way the caller sees them (``values.csv:7``, ``row 3``). Fix the data or
    the DHIS2 metadata, then push again.
    """

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings: tuple[Finding, ...] = tuple(findings)
        lines = "\n  ".join(str(f) for f in self.findings)
        super().__init__(
            f"preflight found {len(self.findings)} problem(s); nothing was sent:\n  {lines}"
        )


def _fetch_program(session: Dhis2Session, uid: str) -> ProgramInfo | None:
    """The program with its stages, their data elements and its attributes; None on 404."""
    path = f"programs/{uid}"
    try:
        body = session.get_json(path, {"fields": PROGRAM_FIELDS})
    except NotFoundError:
        return None
    return parse_program(body, f"/api/{path}")


def _fetch_data_set(session: Dhis2Session, ref: str) -> DataSetInfo | None:
    """The data set by UID (or, when ``ref`` is not UID-shaped, by code); None when absent."""
    if is_uid(ref):
        path = f"{DATA_SETS}/{ref}"
        try:
            body = session.get_json(path, {"fields": DATA_SET_FIELDS})
        except NotFoundError:
            return None
        return parse_data_set(body, f"/api/{path}")
    params = {"filter": f"code:eq:{ref}", "fields": DATA_SET_FIELDS}
    for page in session.iter_pages(DATA_SETS, params, items_key=DATA_SETS, page_size=2):
        found = json_objects(page.body, DATA_SETS, f"/api/{DATA_SETS}")
        return parse_data_set(found[0], f"/api/{DATA_SETS}")  # codes are unique: the first page
    return None


def _rows_text(names: Sequence[str]) -> str:
    """The first few row names (``values.csv:3, values.csv:9 and 4 more``)."""
    shown = ", ".join(names[:_MAX_ROWS_SHOWN])
    more = f" and {len(names) - _MAX_ROWS_SHOWN} more" if len(names) > _MAX_ROWS_SHOWN else ""
    return f"{shown}{more}"


# -- validate_setup -----------------------------------------------------------------------------

_ProgramKey = Literal["order", "receipt", "str"]
_PROGRAM_ROLES: tuple[tuple[_ProgramKey, str, str, str], ...] = (
    ("order", "WITHOUT_REGISTRATION", "an event program (without registration)", "requisitions"),
    ("receipt", "WITHOUT_REGISTRATION", "an event program (without registration)", "receipts"),
    ("str", "WITH_REGISTRATION", "a tracker program (with registration)", "STR stock"),
)


class _Findings:
    """Collects findings; drops exact repeats (two settings can point at one broken object)."""

    def __init__(self) -> None:
        self._found: dict[Finding, None] = {}

    def add(self, severity: Severity, what: str, how_to_fix: str, subject: str | None) -> None:
        self._found.setdefault(Finding(severity, what, how_to_fix, subject), None)

    def sorted(self) -> list[Finding]:
        return sorted(self._found, key=lambda f: _RANK[f.severity])


def validate_setup(
    session: Dhis2Session,
    config: Dhis2Config,
    *,
    items: ItemResolver | None = None,
    org_units: OrgUnitResolver | None = None,
    layout: LayoutResolver | None = None,
) -> list[Finding]:
    """Check the configuration against the server; return findings, errors first.

    Checks that each configured program exists and has the right type (Order and Receipt are
    event programs, STR a tracker program); that the STR stages and data elements of the data
    element table, the Receipt consignment data element and the Order line-layout data elements
    belong to their programs (by code or UID); that the item-code attribute is assigned to the
    STR program; that the data set exists and its period type fits ``period_format``; that
    mapped stores and customers are assigned to the data set; that stock data elements keep
    zeros (``zeroIsSignificant``); and that every item's reference names a data element.
    With a ``[data_set]`` layout, that every measure resolves and each item's measures land in
    the data set in combos DHIS2 accepts (see :func:`_check_layout`).

    Requests: one per distinct configured program, one for the data set, and for items whose
    data element is not in the data set one batched look-up per URL-sized chunk (cached by the
    resolver), plus one org unit look-up only when some mapped org unit is not assigned.

    Args:
        session: the session to read metadata with.
        config: the configuration to check.
        items: the item resolver; without it, item checks are skipped.
        org_units: the store/customer resolver; without it, org unit checks are skipped.
        layout: the data set layout; without it, layout checks are skipped.

    Returns:
        Findings sorted errors, then warnings, then info; no error and no warning means the
        setup is sound as far as metadata can tell.

    Raises:
        Dhis2Error: the server could not be read (connection, authentication, permission,
            5xx, malformed answer). A configured object that does not exist (404) is a finding,
            not an exception.
    """
    found = _Findings()
    programs = _check_programs(session, config, found)
    _check_str_rows(config, programs, found)
    _check_program_elements(config, programs, found)
    data_set = _check_data_set(session, config, found)
    if items is not None and (layout is None or _items_are_data_elements(layout)):
        _check_items(session, items, data_set, found)
    if layout is not None:
        _check_layout(layout, data_set, found)
    if org_units is not None:
        _check_org_units(session, org_units, data_set, found)
    result = found.sorted()
    log.info(
        "setup check: %d error(s), %d warning(s), %d note(s)",
        sum(f.severity == "error" for f in result),
        sum(f.severity == "warning" for f in result),
        sum(f.severity == "info" for f in result),
    )
    return result


def _check_programs(
    session: Dhis2Session, config: Dhis2Config, found: _Findings
) -> dict[_ProgramKey, ProgramInfo]:
    fetched: dict[str, ProgramInfo | None] = {}
    programs: dict[_ProgramKey, ProgramInfo] = {}
    for key, expected, kind, purpose in _PROGRAM_ROLES:
        setting = f"programs.{key}"
        uid: str | None = getattr(config.programs, key)
        if not uid:
            found.add(
                "info",
                f"{setting} is not set: {purpose} are not read",
                f"set {setting} to the program UID to use it",
                setting,
            )
            continue
        if uid not in fetched:
            fetched[uid] = _fetch_program(session, uid)
        program = fetched[uid]
        if program is None:
            found.add(
                "error",
                f"program {uid} ({setting}) does not exist on the server, or the DHIS2 user "
                "cannot see it",
                f"check the UID in DHIS2 Maintenance > Programs and the program's sharing, "
                f"then fix {setting}",
                setting,
            )
            continue
        if program.program_type != expected:
            found.add(
                "error",
                f"program {program.ref.label} ({setting}) is {program.program_type or 'of no type'}"
                f", but the {key} program must be {kind}",
                f"point {setting} at {kind}",
                setting,
            )
        programs[key] = program
    return programs


def _stage_names(program: ProgramInfo) -> str:
    return ", ".join(s.ref.label for s in program.stages) or "none"


def _check_str_rows(
    config: Dhis2Config, programs: Mapping[_ProgramKey, ProgramInfo], found: _Findings
) -> None:
    str_program = programs.get("str")
    for row_name in ("stock_on_hand", "received_quantity"):
        row: DataElementMapping = getattr(config.data_elements, row_name)
        prefix = f"data_elements.{row_name}"
        if not row.active:
            continue
        if not config.programs.str:
            found.add(
                "error",
                f"{prefix} is active but programs.str is not set",
                "set programs.str to the STR tracker program UID, or make the row inactive",
                "programs.str",
            )
            continue
        if str_program is None:
            continue  # the missing program is already an error
        stage = next((s for s in str_program.stages if s.ref.known_as(row.program_stage)), None)
        if stage is None:
            found.add(
                "error",
                f"program stage {row.program_stage} ({prefix}.program_stage) is not a stage of "
                f"the STR program {str_program.ref.label}",
                f"use one of its stages: {_stage_names(str_program)}",
                f"{prefix}.program_stage",
            )
        else:
            element = next((e for e in stage.elements if e.known_as(row.data_element)), None)
            if element is None:
                found.add(
                    "error",
                    f"data element {row.data_element} ({prefix}.data_element) is not in program "
                    f"stage {stage.ref.label} of the STR program",
                    "add the data element to the stage in DHIS2, or fix the setting",
                    f"{prefix}.data_element",
                )
            elif element.zero_is_significant is False and row_name == "stock_on_hand":
                # only a zero stock on hand is news (a stock-out); nobody receives zero
                found.add(
                    "warning",
                    f"data element {element.label} ({prefix}.data_element) has zeroIsSignificant "
                    "false: stock-outs (zero) would be silently dropped",
                    _ZERO_FIX,
                    f"{prefix}.data_element",
                )
        if row.attribute and not any(a.known_as(row.attribute) for a in str_program.attributes):
            names = ", ".join(a.label for a in str_program.attributes) or "none"
            found.add(
                "error",
                f"tracked entity attribute {row.attribute} ({prefix}.attribute) is not an "
                f"attribute of the STR program {str_program.ref.label} (it has: {names})",
                "assign the attribute to the program in DHIS2 Maintenance > Programs > "
                "Attributes, or fix the setting",
                f"{prefix}.attribute",
            )


def _check_program_elements(
    config: Dhis2Config, programs: Mapping[_ProgramKey, ProgramInfo], found: _Findings
) -> None:
    wanted: tuple[tuple[_ProgramKey, str, str | None], ...] = (
        ("receipt", "receipt.consignment_data_element", config.receipt.consignment_data_element),
        ("order", "order.item_data_element", config.order.item_data_element),
        ("order", "order.quantity_data_element", config.order.quantity_data_element),
    )
    for key, setting, ref in wanted:
        program = programs.get(key)
        if not ref or program is None:
            continue
        if program.element(ref) is None:
            found.add(
                "error",
                f"data element {ref} ({setting}) is in no stage of the {key} program "
                f"{program.ref.label}",
                f"add it to a stage ({_stage_names(program)}) in DHIS2, or fix {setting}",
                setting,
            )


def _check_data_set(
    session: Dhis2Session, config: Dhis2Config, found: _Findings
) -> DataSetInfo | None:
    ref = config.lmis.data_set
    if not ref:
        found.add(
            "info",
            "lmis.data_set is not set: data values cannot be pushed",
            "set lmis.data_set to the data set UID to push stock data values",
            "lmis.data_set",
        )
        return None
    data_set = _fetch_data_set(session, ref)
    if data_set is None:
        found.add(
            "error",
            f"data set {ref} (lmis.data_set) does not exist on the server, or the DHIS2 user "
            "cannot see it",
            "check the UID in DHIS2 Maintenance > Data sets and its sharing, then fix "
            "lmis.data_set",
            "lmis.data_set",
        )
        return None
    fmt = config.lmis.period_format
    try:
        produced = period_type_of_format(fmt)
    except PeriodError as exc:
        found.add("error", str(exc), "fix lmis.period_format", "lmis.period_format")
        return data_set
    if data_set.period_type not in _PERIOD_TYPE_NAMES:  # only then is the version needed
        try:
            period_type_named(data_set.period_type, server_version=session.version)
        except PeriodError as exc:  # a type DHIS2 added after the ones this library knows
            found.add(
                "error",
                f"data set {data_set.ref.label}: {exc}",
                "upgrade dhis2-lmis, or use a data set with a period type listed here",
                "lmis.data_set",
            )
            return data_set
    # only a type younger than 2.36 costs the one request for the server's version
    if produced.since is not None and not produced.exists_in(session.version):
        found.add(
            "error",
            f"lmis.period_format {fmt!r} makes {produced} periods, which DHIS2 has only from "
            f"{produced.since}; this server runs DHIS2 {session.version} and would reject "
            "every value",
            f'set lmis.period_format = "{data_set.period_type}"',
            "lmis.period_format",
        )
    elif produced.value != data_set.period_type:
        found.add(
            "error",
            f"data set {data_set.ref.label} has period type {data_set.period_type}, but "
            f"lmis.period_format {fmt!r} makes {produced} periods: DHIS2 would reject every "
            "value",
            f'set lmis.period_format = "{data_set.period_type}", or use a data set with '
            f"period type {produced}",
            "lmis.period_format",
        )
    return data_set


def _check_items(
    session: Dhis2Session, items: ItemResolver, data_set: DataSetInfo | None, found: _Findings
) -> None:
    scheme = items.id_scheme
    by_ref = {ref: item for item in items.items if (ref := items.dhis2_ref(item)) is not None}
    in_data_set: dict[str, DataElementInfo] = {}
    if data_set is not None:
        for element in data_set.elements:
            key = element.ref_in(scheme)
            if key is not None and key in by_ref:
                in_data_set[key] = element
    rest = [ref for ref in by_ref if ref not in in_data_set]
    if rest:
        resolver = items if items.session is not None else ItemResolver((), session=session)
        known = resolver.resolve_uids(rest) if scheme == "CODE" else resolver.resolve_codes(rest)
        for ref in rest:
            if ref not in known:
                item = by_ref[ref]
                found.add(
                    "warning",
                    f"item {item.code} ({item.name}) has {_field_label(items)} {ref}, "
                    f"which matches no data element {scheme.lower()} on the server",
                    f"fix the item's {_field_label(items)} in mSupply, or create the data "
                    "element in DHIS2",
                    f"item {item.code}",
                )
    for ref, element in in_data_set.items():
        item = by_ref[ref]
        if element.zero_is_significant is False and item.include_in_dhis2_push:
            found.add(
                "warning",
                f"data element {element.label} of item {item.code} ({item.name}) has "
                "zeroIsSignificant false: stock-outs (zero) would be silently dropped",
                _ZERO_FIX,
                f"item {item.code}",
            )


def _items_are_data_elements(layout: LayoutResolver) -> bool:
    """Whether item references name data elements (a measure is a combo of them)."""
    config = layout.layout
    return config.item_is == "data_element" and not all(map(config.is_template, config.measures))


def _items_text(items: Sequence[Item], detail: Mapping[Item, str] | None = None) -> str:
    """``A1, B2 (SOH_B2) and 3 more`` for findings about many items."""
    shown = [
        f"{i.code} ({detail[i]})" if detail and i in detail else i.code
        for i in items[:_MAX_ROWS_SHOWN]
    ]
    more = len(items) - _MAX_ROWS_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _check_layout(layout: LayoutResolver, data_set: DataSetInfo | None, found: _Findings) -> None:
    """The ``[data_set]`` layout against the metadata: every measure resolves; with
    ``item_is = "data_element"`` each item's data element is in the data set and carries each
    measure's combo in its category combo, and templates render to data elements of the data
    set; with ``item_is = "category_option_combo"`` each measure's data element is in the data
    set and each item's combo belongs to its category combo. Items are those pushed."""
    items = layout.items
    pushed = [i for i in items.items if i.include_in_dhis2_push and items.dhis2_ref(i)]
    in_set = {e.uid for e in data_set.elements} if data_set is not None else None
    for measure in layout.measures:
        setting = f"data_set.measures.{measure}"
        if layout.layout.is_template(measure):
            _check_template(layout, measure, pushed, data_set=data_set, found=found)
            continue
        target = layout.measure_target(measure)
        if target is None:
            kind = (
                "category option combo"
                if layout.layout.item_is == "data_element"
                else ("data element of the data set")
            )
            found.add(
                "error",
                layout.describe_measure(measure),
                f"set {setting} to the UID, code or name of a {kind}",
                setting,
            )
        elif isinstance(target, CategoryOptionComboInfo):
            _check_combo_measure(layout, measure, target, pushed, found)
        else:
            _check_element_measure(layout, measure, target, pushed, data_set=data_set, found=found)
    if layout.layout.item_is == "data_element" and in_set is not None and data_set is not None:
        outside = [
            i
            for i in pushed
            if isinstance(e := layout.item_target(i), DataElementInfo) and e.uid not in in_set
        ]
        if outside:
            found.add(
                "error",
                f"the data elements of items {_items_text(outside)} are not in data set "
                f"{data_set.ref.label}: their values would be read back by no report",
                "add the data elements to the data set in DHIS2 Maintenance > Data sets",
                "data_set.item_is",
            )


def _check_template(
    layout: LayoutResolver,
    measure: str,
    pushed: Sequence[Item],
    *,
    data_set: DataSetInfo | None,
    found: _Findings,
) -> None:
    in_set = {e.uid for e in data_set.elements} if data_set is not None else None
    setting = f"data_set.measures.{measure}"
    template = layout.layout.measures[measure]
    missing: dict[Item, str] = {}
    outside: list[Item] = []
    drop_zeros: list[Item] = []
    for item in pushed:
        rendered = layout.rendered(item, measure)
        if rendered is None:
            continue
        code, element = rendered
        if element is None:
            missing[item] = code
            continue
        if in_set is not None and element.uid not in in_set:
            outside.append(item)
        if element.zero_is_significant is False:
            drop_zeros.append(item)
    if drop_zeros:
        found.add(
            "warning",
            f"measure {measure} = {template!r}: the data elements of items "
            f"{_items_text(drop_zeros)} have zeroIsSignificant false: zeros (stock-outs) would "
            "be silently dropped",
            _ZERO_FIX,
            setting,
        )
    if missing:
        found.add(
            "error",
            f"measure {measure} = {template!r} renders data element codes no data element has, "
            f"for items {_items_text(list(missing), missing)}",
            f"create those data elements in DHIS2 (with those codes), or fix {setting} or the "
            f"items' {_field_label(layout.items)}",
            setting,
        )
    if outside and data_set is not None:
        found.add(
            "error",
            f"measure {measure} = {template!r}: the data elements of items "
            f"{_items_text(outside)} are not in data set {data_set.ref.label}",
            "add them to the data set in DHIS2 Maintenance > Data sets",
            setting,
        )


def _check_combo_measure(
    layout: LayoutResolver,
    measure: str,
    combo: CategoryOptionComboInfo,
    pushed: Sequence[Item],
    found: _Findings,
) -> None:
    setting = f"data_set.measures.{measure}"
    foreign = [
        item
        for item in pushed
        if isinstance(element := layout.item_target(item), DataElementInfo)
        and element.category_combo != combo.category_combo
    ]
    if foreign:
        found.add(
            "error",
            f"measure {measure} is category option combo {combo.label}, which is not in the "
            f"category combo of the data elements of items {_items_text(foreign)}: DHIS2 "
            "would refuse their values",
            "give those data elements the category combo that holds it (DHIS2 Maintenance > "
            f"Data elements), or fix {setting}",
            setting,
        )


def _check_element_measure(
    layout: LayoutResolver,
    measure: str,
    element: DataElementInfo,
    pushed: Sequence[Item],
    *,
    data_set: DataSetInfo | None,
    found: _Findings,
) -> None:
    setting = f"data_set.measures.{measure}"
    if data_set is not None and all(e.uid != element.uid for e in data_set.elements):
        found.add(
            "error",
            f"measure {measure} is data element {element.label}, which is not in data set "
            f"{data_set.ref.label}",
            f"add it to the data set in DHIS2 Maintenance > Data sets, or fix {setting}",
            setting,
        )
    if element.zero_is_significant is False:
        found.add(
            "warning",
            f"measure {measure} is data element {element.label}, which has zeroIsSignificant "
            "false: zeros (stock-outs) would be silently dropped",
            _ZERO_FIX,
            setting,
        )
    if layout.items.id_scheme == "CODE" and not element.code:
        found.add(
            "error",
            f"measure {measure} is data element {element.label}, which has no code, but "
            "lmis.data_element_id_scheme is CODE: its values cannot be pushed",
            "give the data element a code in DHIS2, or use the UID scheme",
            setting,
        )
    unknown = [item for item in pushed if layout.item_target(item) is None]
    foreign = [
        item
        for item in pushed
        if isinstance(combo := layout.item_target(item), CategoryOptionComboInfo)
        and combo.category_combo != element.category_combo
    ]
    field = _field_label(layout.items)
    if unknown:
        found.add(
            "warning",
            f"items {_items_text(unknown)} have a {field} that names no category option combo "
            f"{layout.items.id_scheme.lower()} on the server: they are skipped",
            f"fix the items' {field} in mSupply",
            "data_set.item_is",
        )
    if foreign:
        found.add(
            "error",
            f"the category option combos of items {_items_text(foreign)} are not in the "
            f"category combo of measure {measure}'s data element {element.label}: DHIS2 would "
            "refuse their values",
            f"add the items' options to that category combo in DHIS2, or fix the items' {field}",
            setting,
        )


def _field_label(items: ItemResolver) -> str:
    return "universal code" if items.item_field == "universal_code" else items.item_field


def _check_org_units(
    session: Dhis2Session,
    org_units: OrgUnitResolver,
    data_set: DataSetInfo | None,
    found: _Findings,
) -> None:
    places: list[tuple[Store | Customer, str, str]] = []  # (place, kind, field)
    places += [(s, "store", org_units.store_field) for s in org_units.stores]
    if org_units.name_field is not None:
        places += [(c, "customer", org_units.name_field) for c in org_units.customers]
    unassigned: list[tuple[Store | Customer, str, str, str]] = []
    for place, kind, field in places:
        ref = org_units.org_unit_for(place)
        if ref is None:
            found.add(
                "info",
                f"{kind} {place.code} ({place.name}) has no org unit in its {field} field: "
                "it is skipped",
                f"fill {field} in mSupply with the org unit {org_units.id_scheme.lower()} to "
                "include it",
                f"{kind} {place.code}",
            )
        elif data_set is not None and not data_set.assigned(ref, org_units.id_scheme):
            unassigned.append((place, kind, field, ref))
    if not unassigned or data_set is None:
        return
    refs = [ref for *_, ref in unassigned]
    resolver = org_units if org_units.session is not None else OrgUnitResolver(session=session)
    if org_units.id_scheme == "CODE":
        existing = resolver.resolve_uids(refs)
    else:
        existing = resolver.resolve_codes(refs)
    for place, kind, field, ref in unassigned:
        if ref in existing:
            what = (
                f"{kind} {place.code} ({place.name}) maps to org unit {existing[ref].name} "
                f"({ref}), which is not assigned to data set {data_set.ref.label}: its values "
                "would be rejected"
            )
            how = "assign the org unit in DHIS2 Maintenance > Data sets > Organisation units"
        else:
            what = (
                f"{kind} {place.code} ({place.name}) maps to org unit {ref}, which does not "
                "exist on the server"
            )
            how = f"fix {field} of {kind} {place.code} in mSupply"
        found.add("warning", what, how, f"{kind} {place.code}")


# -- preflight ----------------------------------------------------------------------------------

_DEFAULT = "default"  # the name and code of DHIS2's default category option combo
_EXPIRED_OK = frozenset({"ALL", "F_EDIT_EXPIRED"})  # authorities DHIS2 lets past expiryDays


@attrs.frozen
class _Row:
    """One value of the push as DHIS2 reads it, with the name the caller knows it by."""

    name: str
    data_set: str | None
    fields: JsonObject

    def text(self, key: str) -> str | None:
        return json_text(self.fields, key)


class Preflight:
    """Checks a whole push against the data set before anything is sent.

    An instance is the ``preflight`` of :func:`~dhis2_lmis.lmis.datavalues.push_data_value_set`,
    which calls it once with every chunk and with the rows the builder refused. It raises
    :class:`PreflightError` listing every problem, naming rows the way the caller sees them
    (``values.csv:7``, ``row 3``), so that either every value is sent or none is. It checks
    what DHIS2 checks when it imports, and what it would store where nobody reads it:

    * rows the builder refused (not a number, no data element);
    * the value against the data element's value type and option set
      (:func:`~dhis2_lmis.dhis2.valuetypes.value_problem`, DHIS2's ``E7619``/``E7621``);
    * zeros on data elements whose ``zeroIsSignificant`` is false (dropped silently);
    * data elements not in the data set, category option combos not of the data element's
      category combo, attribute option combos not of the data set's (2.43 refuses them; earlier
      versions store them where the data set's forms and reports never look);
    * org units not assigned to the data set, periods not of its period type;
    * periods closed for entry: outside the data set's data input periods when it has any, else
      past ``expiryDays`` (unless the DHIS2 user may edit expired periods) or after the
      ``openFuturePeriods`` allowance.

    Metadata is read once per instance (make one per push): the data set with its elements,
    option sets, option combos and org units; a batched look-up for data elements of a push
    without a data set; the user's authorities only when a period has expired. Periods are
    judged open at the current time in the server's time zone (``serverTimeZoneId``).

    Args:
        session: the session to read metadata with.
        config: supplies the data set (when a chunk names none) and the data element id scheme
            the push uses.
        items: an item resolver whose data element cache may be reused.

    Raises:
        PreflightError: from ``__call__``, listing every problem of the push.
        Dhis2Error: the metadata could not be read.
    """

    def __init__(
        self,
        session: Dhis2Session,
        config: Dhis2Config,
        *,
        items: ItemResolver | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.scheme: IdScheme = config.lmis.data_element_id_scheme
        self._data_sets: dict[str, DataSetInfo | None] = {}
        self._may_edit_expired: bool | None = None
        if items is not None and items.session is not None:
            self._elements = items
        else:
            self._elements = ItemResolver((), id_scheme=self.scheme, session=session)

    def __repr__(self) -> str:
        return f"Preflight(data_set={self.config.lmis.data_set!r}, scheme={self.scheme!r})"

    def __call__(self, chunks: Sequence[NamedChunk], refused: Sequence[RejectedRow] = ()) -> None:
        findings = self.check(chunks, refused)
        if findings:
            raise PreflightError(findings)

    def check(
        self, chunks: Sequence[NamedChunk], refused: Sequence[RejectedRow] = ()
    ) -> list[Finding]:
        """Every problem of the push, as findings of severity ``"error"``; empty when clean.

        Raises:
            Dhis2Error: the metadata could not be read.
        """
        findings = [
            Finding("error", str(r.error), "fix the row, or leave it out knowingly", r.row)
            for r in refused
        ]
        rows = _rows(chunks, self.config.lmis.data_set)
        by_data_set: dict[str | None, list[_Row]] = {}
        for row in rows:
            by_data_set.setdefault(row.data_set, []).append(row)
        for ref, group in by_data_set.items():
            data_set = self._data_set(ref) if ref else None
            if ref and data_set is None:
                findings.append(
                    Finding(
                        "error",
                        f"data set {ref} does not exist on the server, or the DHIS2 user "
                        "cannot see it",
                        "fix lmis.data_set (or the payload's dataSet)",
                        "lmis.data_set",
                    )
                )
                continue
            findings += self._values(group, data_set)
            if data_set is not None:
                findings += _outside(group, data_set, self.scheme)
                findings += _unassigned(group, data_set)
                findings += self._periods(group, data_set)
        return findings

    def _data_set(self, ref: str) -> DataSetInfo | None:
        if ref not in self._data_sets:
            self._data_sets[ref] = _fetch_data_set(self.session, ref)
        return self._data_sets[ref]

    def _element_info(
        self, rows: Sequence[_Row], data_set: DataSetInfo | None
    ) -> dict[str, DataElementInfo]:
        """The data elements of ``rows`` by reference: from the data set, or (without one) by
        one batched look-up."""
        refs = {ref for row in rows if (ref := row.text(DATA_ELEMENT)) is not None}
        if data_set is not None:
            return {
                key: e
                for e in data_set.elements
                if (key := e.ref_in(self.scheme)) is not None and key in refs
            }
        lookup = (
            self._elements.resolve_uids if self.scheme == "CODE" else self._elements.resolve_codes
        )
        return dict(lookup(sorted(refs))) if refs else {}

    def _values(self, rows: Sequence[_Row], data_set: DataSetInfo | None) -> list[Finding]:
        """Values DHIS2 refuses for their type or option set, and zeros it drops."""
        elements = self._element_info(rows, data_set)
        refused: dict[tuple[str, str], list[str]] = {}
        zeros: dict[str, list[str]] = {}
        for row in rows:
            ref, value = row.text(DATA_ELEMENT), _value_text(row.fields.get(VALUE))
            element = elements.get(ref or "")
            if element is None or value is None:
                continue
            problem = value_problem(value, element.value_type, element.options)
            if problem is not None:
                refused.setdefault((ref or "", problem), []).append(f"{row.name} ({value!r})")
            elif element.zero_is_significant is False and _is_zero(value):
                zeros.setdefault(ref or "", []).append(row.name)
        findings = [
            Finding(
                "error",
                f"{_rows_text(names)}: {VALUE_PROBLEMS.get(problem, problem)} for data element "
                f"{elements[ref].label} ({_type_label(elements[ref])}): DHIS2 would refuse "
                f"{'them' if len(names) > 1 else 'it'} ({problem})",
                _value_fix(elements[ref], problem),
                f"data element {ref}",
            )
            for (ref, problem), names in refused.items()
        ]
        findings += [
            Finding(
                "error",
                f"{_rows_text(names)}: zero for data element {elements[ref].label}, whose "
                "zeroIsSignificant is false: DHIS2 would silently drop the stock-out",
                _ZERO_FIX + ", or leave the zeros out knowingly",
                f"data element {ref}",
            )
            for ref, names in zeros.items()
        ]
        return findings

    def _periods(self, rows: Sequence[_Row], data_set: DataSetInfo) -> list[Finding]:
        """Period ids that are not DHIS2's, of the wrong type, or closed for entry now."""
        findings: list[Finding] = []
        # DHIS2 judges with its own clock, in its time zone; its timestamps carry no offset
        now = utc_now().astimezone(self.session.time_zone).replace(tzinfo=None)
        for period_id, names in _group(rows, PERIOD).items():
            try:
                period = parse_period(period_id)
            except PeriodError:
                findings.append(
                    Finding(
                        "error",
                        f"{_rows_text(names)}: {period_id!r} is not a DHIS2 period id",
                        "fix lmis.period_format or the period given to the builder",
                        f"period {period_id}",
                    )
                )
                continue
            if period.type.value != data_set.period_type:
                findings.append(
                    Finding(
                        "error",
                        f"{_rows_text(names)}: period {period_id} is {period.type.value}, but "
                        f"data set {data_set.ref.label} has period type "
                        f"{data_set.period_type}: its forms and reports never read these values, "
                        "and DHIS2 refuses them (the push sends strictPeriods)",
                        f'set lmis.period_format = "{data_set.period_type}" or give a '
                        f"{data_set.period_type} period id",
                        f"period {period_id}",
                    )
                )
                continue
            closed = self._closed(period, data_set, now)
            if closed is not None:
                findings.append(
                    Finding(
                        "error",
                        f"{_rows_text(names)}: period {period_id} is closed for data entry in "
                        f"data set {data_set.ref.label}: {closed[0]}",
                        closed[1],
                        f"period {period_id}",
                    )
                )
        return findings

    def _closed(
        self, period: Period, data_set: DataSetInfo, now: datetime
    ) -> tuple[str, str] | None:
        """Why DHIS2 would not take values of ``period`` now, and the fix; None when open."""
        if data_set.input_periods:
            if any(
                p.period == period.id
                and (p.opening is None or p.opening <= now)
                and (p.closing is None or now <= p.closing)
                for p in data_set.input_periods
            ):
                return None
            return (
                "it is outside the data set's data input periods (E7643)",
                f"open a data input period for {period.id} in DHIS2 Maintenance > Data sets > "
                f"{data_set.ref.label}, or push a period that is open",
            )
        why: tuple[str, str] | None = None
        today = now.date()
        closes = period.end + timedelta(days=data_set.expiry_days)
        latest = period_for(today, period.type)
        for _ in range(data_set.open_future_periods or 0):
            latest = latest.next()
        if data_set.open_future_periods is not None and period.start > latest.start:
            why = (
                f"it is after {latest.id}, the last period openFuturePeriods "
                f"{data_set.open_future_periods} allows (E7641)",
                "push it once the period has begun, or raise the data set's open future periods",
            )
        elif data_set.expiry_days > 0 and today >= closes:
            why = (
                f"expiryDays {data_set.expiry_days} closed it on {closes} (E7640)",
                "ask for a lock exception in DHIS2 Data administration, or raise the data set's "
                "expiry days",
            )
        if why is None or self._editing_expired_allowed():
            return None  # users who may edit expired periods pass both (as 2.43 judges)
        return why[0], why[1] + ", or push as a user with the authority F_EDIT_EXPIRED"

    def _editing_expired_allowed(self) -> bool:
        if self._may_edit_expired is None:
            me = json_object(
                self.session.get_json("me", {"fields": USER_AUTHORITIES_FIELDS}),
                "/api/me",
                "the answer",
            )
            held = me.get("authorities")
            self._may_edit_expired = isinstance(held, list) and not _EXPIRED_OK.isdisjoint(
                a for a in held if isinstance(a, str)
            )
        return self._may_edit_expired


def _rows(chunks: Sequence[NamedChunk], default_data_set: str | None) -> list[_Row]:
    """Every row of the push with the chunk's period, org unit and combo filled in."""
    rows: list[_Row] = []
    for chunk, names in chunks:
        data_set = json_text(chunk, DATA_SET) or default_data_set
        for index, fields in enumerate(effective_rows(chunk)):
            name = names[index] if index < len(names) else f"row {len(rows)}"
            rows.append(_Row(name, data_set, fields))
    return rows


def _value_text(value: JsonValue) -> str | None:
    """The value as DHIS2 reads it (JSON numbers and booleans as their text); None if empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _is_zero(value: str) -> bool:
    try:
        return Decimal(value.strip()) == 0
    except InvalidOperation:
        return False


def _type_label(element: DataElementInfo) -> str:
    kind = element.value_type or "no value type"
    return f"{kind} with an option set" if element.options is not None else kind


def _value_fix(element: DataElementInfo, problem: str) -> str:
    if problem == "value_not_valid_option":
        codes = ", ".join(sorted(element.options or ())[:_MAX_ROWS_SHOWN])
        return f"use one of the option codes ({codes})"
    if element.value_type.startswith("INTEGER") or element.value_type == "PERCENTAGE":
        return (
            "send whole numbers in range: round them (lmis.round_off = true) or fix the source "
            f"data, or change the data element's value type ({element.value_type}) in DHIS2"
        )
    return f"fix the source data, or change the data element's value type ({element.value_type})"


def _group(rows: Iterable[_Row], key: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for row in rows:
        value = row.text(key)
        if value is not None:
            groups.setdefault(value, []).append(row.name)
    return groups


def _combo_known(ref: str | None, combos: Sequence[MetadataRef]) -> bool:
    """Whether ``ref`` (None: the default combo) is one of ``combos``."""
    if ref is None:
        return any(_DEFAULT in (c.name, c.code) for c in combos)
    return any(c.known_as(ref) for c in combos)


def _outside(rows: Sequence[_Row], data_set: DataSetInfo, scheme: IdScheme) -> list[Finding]:
    """Data elements not in the data set, and option combos not of the data element's or the
    data set's category combo."""
    elements = {key: e for e in data_set.elements if (key := e.ref_in(scheme)) is not None}
    strangers: dict[str, list[str]] = {}
    combos: dict[tuple[str, str], list[str]] = {}
    attributes: dict[str, list[str]] = {}
    for row in rows:
        ref = row.text(DATA_ELEMENT) or ""
        element = elements.get(ref)
        if element is None:
            strangers.setdefault(ref, []).append(row.name)
            continue
        coc = row.text(CATEGORY_OPTION_COMBO)
        if element.option_combos and not _combo_known(coc, element.option_combos):
            combos.setdefault((ref, coc or "(none: the default)"), []).append(row.name)
        aoc = row.text(ATTRIBUTE_OPTION_COMBO)
        if data_set.attribute_combos and not _combo_known(aoc, data_set.attribute_combos):
            attributes.setdefault(aoc or "(none: the default)", []).append(row.name)
    label = data_set.ref.label
    found = [
        Finding(
            "error",
            f"{_rows_text(names)}: data element {ref} is not in data set {label}: DHIS2 2.43 "
            "refuses it (E8020), earlier versions store it where the data set's forms and "
            "reports never look",
            f"add the data element to the data set in DHIS2 Maintenance > Data sets, or fix "
            f"the data element {'code' if scheme == 'CODE' else 'UID'}",
            f"data element {ref}",
        )
        for ref, names in strangers.items()
    ]
    found += [
        Finding(
            "error",
            f"{_rows_text(names)}: category option combo {coc} is not one of data element "
            f"{elements[ref].label}'s ({_names(elements[ref].option_combos)}): the value would "
            "be stored where its form never shows it (E7634)",
            "name one of the data element's category option combos",
            f"data element {ref}",
        )
        for (ref, coc), names in combos.items()
    ]
    found += [
        Finding(
            "error",
            f"{_rows_text(names)}: attribute option combo {aoc} is not one of data set "
            f"{label}'s ({_names(data_set.attribute_combos)}) (E7635)",
            "name one of the data set's attribute option combos",
            f"attribute option combo {aoc}",
        )
        for aoc, names in attributes.items()
    ]
    return found


def _names(combos: Sequence[MetadataRef]) -> str:
    shown = [c.code or c.uid for c in combos[:_MAX_ROWS_SHOWN]]
    return ", ".join(shown) + (" ..." if len(combos) > _MAX_ROWS_SHOWN else "")


def _unassigned(rows: Sequence[_Row], data_set: DataSetInfo) -> list[Finding]:
    return [
        Finding(
            "error",
            f"{_rows_text(names)}: org unit {org_unit} is not assigned to data set "
            f"{data_set.ref.label}: DHIS2 would reject these values",
            "assign the org unit in DHIS2 Maintenance > Data sets > Organisation units, or "
            "fix the store's org unit field",
            f"org unit {org_unit}",
        )
        for org_unit, names in _group(rows, ORG_UNIT).items()
        if not data_set.assigned(org_unit)
    ]
