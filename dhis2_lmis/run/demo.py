"""The offline demo behind ``dhis2-lmis demo``: the whole daily job against a fake DHIS2.

:func:`run_demo` starts :class:`~dhis2_lmis.testing.FakeDhis2` on 127.0.0.1 seeded with the demo
LMIS world (``dhis2_lmis.testing.DEMO``), configures a :class:`~dhis2_lmis.client.Dhis2Lmis`
for it exactly as a site would configure its own server, and runs the flows of LMIS_DOMAIN.md
§6 in order: test the connection, pull completed requisitions, pull consignment receipts and
push each one's packing list to the STR program as stock receipts, read stock on hand, and push
it to the data set for the month the consignments arrived. It needs no network, no configuration
file and no state file, and returns a :class:`DemoSummary` for the command to print: nothing
here prints.

:func:`write_demo_files` is the other half of ``dhis2-lmis demo --serve``: the configuration and
the mSupply files a user needs to try every other command against the running fake.

With a ``layout`` (``dhis2-lmis demo --layout category_option_combo``) the demo server also
gets a stock data set in that shape (docs/layouts.md), and the data set push sends each
facility's stock on hand and received quantity through the ``[data_set]`` layout, then reads
them back as stock reports by item and measure.

The packing lists stand in for mSupply: in production the supplying store's shipment says what
a consignment held; here :data:`DEMO_PACKING_LIST` does, keyed by the demo world's consignment
numbers.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

import attrs

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.imports import ImportSummary
from dhis2_lmis.dhis2.records import ConnectionCheck
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Customer,
    Item,
    Requisition,
    StockLevel,
    StockReport,
    Store,
)
from dhis2_lmis.lmis.stock import PackingList, StockPushReport, StockReceipt, StockReceiptOutcome
from dhis2_lmis.testing import DEMO, FakeDhis2
from dhis2_lmis.testing._version import parse_version

__all__ = [
    "DEMO_LAYOUTS",
    "DEMO_PACKING_LIST",
    "DemoFiles",
    "DemoLayout",
    "DemoSummary",
    "demo_config",
    "demo_customers",
    "demo_items",
    "demo_stores",
    "demo_version",
    "run_demo",
    "write_demo_files",
]

log = logging.getLogger(__name__)

#: The demo world's three consignments (``CN-2024-1001`` .. ``1003``), as shipped by mSupply.
DEMO_PACKING_LIST = PackingList.from_mapping(
    {
        "CN-2024-1001": (("AMOX250", 100), ("ORS200", 40)),
        "CN-2024-1002": (("AMOX250", 120), ("PARA500", 60)),
        "CN-2024-1003": (("AMOX250", 140), ("ZINC20", 30)),
    }
)

DemoLayout = Literal["category_option_combo", "template"]
#: The data set layouts the demo can run with (docs/layouts.md shapes 2 and 3; in shape 1 the
#: items' references would have to name aggregate data elements, and in the demo world they
#: name the Order program's).
DEMO_LAYOUTS: tuple[DemoLayout, ...] = ("category_option_combo", "template")

_LAYOUT_DATA_SET = "LmLayoutDs1"
_ITEM_COMBO = "LmItemCombo"
_LAYOUT_MEASURES: Mapping[DemoLayout, Mapping[str, str]] = {
    "category_option_combo": {"stock_on_hand": "LMIS_SOH", "received_quantity": "Stock received"},
    "template": {"stock_on_hand": "SOH_{item}", "received_quantity": "REC_{item}"},
}

# Where customers and stores keep their org unit (mSupply's "Dhis2Code" custom field).
_ORG_UNIT_FIELD = "Dhis2Code"
_STORE = ("CMS001", "Central Medical Store")


@attrs.frozen
class DemoSummary:
    """What one demo run did, for the command to print.

    Attributes:
        server: the fake's URL and version.
        connection: the "Test connection" answer.
        requisitions: completed requisitions pulled from the Order program.
        receipts: completed consignment receipts pulled from the Receipt program.
        stock_push: the outcome of writing the packing lists to the STR program.
        stock_before / stock_after: stock on hand before and after the stock push.
        period: the data set period the stock on hand was pushed for: the month of the latest
            consignment receipt (the activity the figures describe).
        data_push: the merged import summary of the data value pushes.
        seconds: how long the run took.
        layout: the data set layout the push used, or None (one data element per item).
        stock_reports: with a layout, the pushed data read back as stock reports.
    """

    server: str
    connection: ConnectionCheck
    requisitions: tuple[Requisition, ...]
    receipts: tuple[ConsignmentReceipt, ...]
    stock_push: StockPushReport
    stock_before: tuple[StockLevel, ...]
    stock_after: tuple[StockLevel, ...]
    period: str
    data_push: ImportSummary
    seconds: float
    layout: DemoLayout | None = None
    stock_reports: tuple[StockReport, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every step succeeded and nothing was refused or read back wrong."""
        read_back = all(not r.problems for r in self.stock_reports)
        return self.connection.ok and self.stock_push.ok and self.data_push.ok and read_back

    def __str__(self) -> str:
        return "\n".join(_render(self))


def demo_version(text: str) -> str:
    """``text`` if the demo server can answer as that DHIS2 version (``"2.41"``, ``"2.40.3"``).

    Raises:
        ValueError: not a version between 2.36 and 2.43; the message says which are.
    """
    return parse_version(text).full


def demo_items() -> tuple[Item, ...]:
    """The demo items; each universal code is its Order-program data element code."""
    return tuple(
        Item(code, name, universal_code=code)
        for code, name in zip(DEMO.item_codes, DEMO.item_names, strict=True)
    )


def demo_customers() -> tuple[Customer, ...]:
    """The three demo facilities as mSupply customers, org unit in ``Dhis2Code``."""
    return tuple(
        Customer(code, name, custom_fields={_ORG_UNIT_FIELD: uid})
        for code, name, uid in zip(
            DEMO.facility_codes, DEMO.facility_names, DEMO.facilities, strict=True
        )
    )


def demo_stores() -> tuple[Store, ...]:
    """The central medical store, the supplying store of every demo consignment."""
    return (Store(*_STORE, {_ORG_UNIT_FIELD: DEMO.warehouse}),)


def _settings(
    url: str, *, state: str | None = None, layout: DemoLayout | None = None
) -> dict[str, dict[str, object]]:
    """The settings a site would write for the demo world served at ``url``, as TOML tables.

    Order data elements are matched by code (``data_element_id_scheme = "CODE"``), so the same
    scheme applies to the data set push: its data elements are given by code too. With a
    ``layout``, ``[lmis] data_set`` is the data set :func:`seed_layout` adds, and the
    ``[data_set]`` section describes it.
    """
    d = DEMO
    str_row = {"program_stage": d.str_stage, "attribute": d.item_code_attribute}
    settings: dict[str, dict[str, object]] = {
        "dhis2": {"url": url, "auth": "basic", "username": d.username, "password": d.password},
        "lmis": {
            "data_set": d.data_set if layout is None else _LAYOUT_DATA_SET,
            "period_format": "YYYYMM",
            "item_field": "universal_code",
            "data_element_id_scheme": "CODE",
            "org_unit_id_scheme": "UID",
            "name_field": _ORG_UNIT_FIELD,
            "store_field": _ORG_UNIT_FIELD,
        },
        "programs": {"order": d.order_program, "receipt": d.receipt_program, "str": d.str_program},
        "data_elements.stock_on_hand": {"data_element": d.stock_on_hand_data_element, **str_row},
        "data_elements.received_quantity": {
            "data_element": d.stock_received_data_element,
            **str_row,
        },
        "receipt": {"consignment_data_element": d.consignment_data_element},
    }
    if layout is not None:
        settings["data_set"] = {"item_is": _item_is(layout)}
        settings["data_set.measures"] = dict(_LAYOUT_MEASURES[layout])
    if state is not None:
        settings["sync"] = {"state": state}
    return settings


def demo_config(url: str, layout: DemoLayout | None = None) -> Dhis2Config:
    """The configuration a site would write for the demo world served at ``url``."""
    nested: dict[str, dict[str, object]] = {}
    for table, values in _settings(url, layout=layout).items():
        section, _, row = table.partition(".")
        target = nested.setdefault(section, {})
        if row:
            target[row] = values
        else:
            target.update(values)
    return Dhis2Config.from_dict(nested, environ={})  # the demo reads no environment


def _item_is(layout: DemoLayout) -> str:
    return "category_option_combo" if layout == "category_option_combo" else "data_element"


def seed_layout(fake: FakeDhis2, layout: DemoLayout) -> None:
    """Add to a demo server a monthly stock data set in the ``layout`` shape, assigned to the
    demo facilities.

    ``category_option_combo``: data elements ``LMIS_SOH`` and ``LMIS_RECEIVED`` ("Stock
    received") whose category combo has one option combo per item, coded by item code.
    ``template``: data elements ``SOH_<item>`` (the demo's own) and ``REC_<item>``.
    """
    elements: list[str] = []
    if layout == "category_option_combo":
        combos = {f"LmCoc{n:06d}": code for n, code in enumerate(DEMO.item_codes)}
        names = dict(zip(combos, DEMO.item_names, strict=True))
        fake.add_category_combo(_ITEM_COMBO, "ITEMS", "Items", combos, names=names)
        for uid, code, name in (
            ("LmLaySoh001", "LMIS_SOH", "Stock on hand"),
            ("LmLayRecv01", "LMIS_RECEIVED", "Stock received"),
        ):
            fake.add_data_element(
                uid, code, name, category_combo=_ITEM_COMBO, zero_is_significant=True
            )
            elements.append(uid)
    else:
        elements += DEMO.soh_data_elements
        for n, (code, name) in enumerate(zip(DEMO.item_codes, DEMO.item_names, strict=True)):
            uid = f"LmLayRec{n:03d}"
            fake.add_data_element(uid, f"REC_{code}", f"Received {name}", zero_is_significant=True)
            elements.append(uid)
    fake.add_data_set(
        _LAYOUT_DATA_SET,
        "LMIS_LAYOUT",
        f"Stock by measure ({layout})",
        data_elements=elements,
        org_units=DEMO.facilities,
    )


def run_demo(
    *,
    version: str = "2.41",
    today: date | None = None,
    clock: Callable[[], float] = time.perf_counter,
    layout: DemoLayout | None = None,
) -> DemoSummary:
    """Run the daily job against a fresh demo FakeDhis2 and report what happened.

    Args:
        version: the DHIS2 version the fake answers as (2.36 to 2.43, see :func:`demo_version`).
        today: the date whose period receives the stock on hand; default: the day of the
            latest consignment receipt (the month the stock figures describe).
        clock: measures the run (seconds).
        layout: push stock on hand and received quantity through a data set in this shape
            (see :func:`seed_layout`) and read them back; None pushes stock on hand to the
            demo's one-data-element-per-item data set.

    Raises:
        Dhis2Error: a step failed outright (it should not against the fake).
    """
    started = clock()
    reports: tuple[StockReport, ...] = ()
    with FakeDhis2.demo(version=version) as fake:
        if layout is not None:
            seed_layout(fake, layout)
        config = demo_config(fake.url, layout)
        with Dhis2Lmis(
            config, items=demo_items(), stores=demo_stores(), customers=demo_customers()
        ) as lmis:
            connection = lmis.test_connection()
            log.info("demo: %s", connection)
            requisitions = tuple(lmis.fetch_completed_requisitions())
            receipts = tuple(lmis.fetch_completed_receipts())
            stock_before = tuple(lmis.fetch_stock_on_hand())
            stock = [s for r in receipts for s in DEMO_PACKING_LIST.stock_receipts_for(r)]
            stock_push = lmis.push_stock_receipts(stock)
            stock_after = tuple(lmis.fetch_stock_on_hand())
            day = today or _activity_day(receipts, fake)
            if layout is None:
                period, data_push = _push_stock_on_hand(lmis, stock_after, day)
            else:
                period, data_push = _push_stock_by_measure(lmis, stock_after, stock, day)
                reports = tuple(lmis.fetch_stock_reports(period))
    return DemoSummary(
        server=f"{fake.url} (fake DHIS2 {fake.version})",
        connection=connection,
        requisitions=requisitions,
        receipts=receipts,
        stock_push=stock_push,
        stock_before=stock_before,
        stock_after=stock_after,
        period=period,
        data_push=data_push,
        seconds=clock() - started,
        layout=layout,
        stock_reports=reports,
    )


def _activity_day(receipts: Iterable[ConsignmentReceipt], fake: FakeDhis2) -> date:
    """The day of the latest receipt: the stock on hand pushed is that month's."""
    days = [r.completed_at.date() for r in receipts if r.completed_at is not None]
    return max(days) if days else fake.now.date()


def _push_stock_on_hand(
    lmis: Dhis2Lmis, levels: Iterable[StockLevel], day: date
) -> tuple[str, ImportSummary]:
    """Push each facility's stock on hand to the data set, one data value set per facility."""
    by_facility: dict[str, list[StockLevel]] = {}
    for level in levels:
        if level.org_unit in DEMO.facilities and level.item_code in DEMO.item_codes:
            by_facility.setdefault(level.org_unit, []).append(level)
    summary = ImportSummary(status="SUCCESS")
    period = ""
    offset = 0
    for org_unit in sorted(by_facility):
        builder = lmis.data_value_set(period=day, org_unit=org_unit)
        period = builder.period
        for level in by_facility[org_unit]:
            if level.stock_on_hand is None or level.item_code is None:
                continue
            code = DEMO.soh_data_element_codes[DEMO.item_codes.index(level.item_code)]
            builder.add(code, level.stock_on_hand)
        summary = summary.merge(lmis.push_data_values(builder), offset)
        offset += len(builder)
    return period, summary


def _push_stock_by_measure(
    lmis: Dhis2Lmis, levels: Iterable[StockLevel], received: Iterable[StockReceipt], day: date
) -> tuple[str, ImportSummary]:
    """Push each facility's stock on hand and received quantity through the layout."""
    items = {item.code: item for item in demo_items()}
    by_facility: dict[str, dict[Item, dict[str, Decimal | int]]] = {}
    for level in levels:
        item = items.get(level.item_code or "")
        if level.org_unit in DEMO.facilities and item and level.stock_on_hand is not None:
            by_facility.setdefault(level.org_unit, {}).setdefault(item, {})["stock_on_hand"] = (
                level.stock_on_hand
            )
    for receipt in received:
        item = items.get(receipt.item_code)
        if receipt.org_unit in by_facility and item is not None:
            measures = by_facility[receipt.org_unit].setdefault(item, {})
            measures["received_quantity"] = measures.get("received_quantity", 0) + receipt.quantity
    summary = ImportSummary(status="SUCCESS")
    period = ""
    offset = 0
    for org_unit in sorted(by_facility):
        builder = lmis.stock_value_set(day, org_unit, values=by_facility[org_unit])
        period = builder.period
        summary = summary.merge(lmis.push_data_values(builder), offset)
        offset += len(builder)
    return period, summary


# -- dhis2-lmis demo --serve -----------------------------------------------------------------------


@attrs.frozen
class DemoFiles:
    """The files :func:`write_demo_files` wrote, and what to try with them.

    Attributes:
        directory: where they are.
        config: ``dhis2-lmis.toml``: the demo server, every program, the data element table,
            and a state file in the same folder.
        items / stores / customers: the mSupply reference lists (``--items`` and so on).
        packing_list: what each demo consignment held (``sync --packing-list``).
        values: stock-on-hand values for ``push-values``.
        report_period: the month the seeded data set reports are for (``pull stock-reports``).
    """

    directory: Path
    config: Path
    items: Path
    stores: Path
    customers: Path
    packing_list: Path
    values: Path
    report_period: str

    def commands(self) -> tuple[str, ...]:
        """Commands to run inside :attr:`directory`, one per line, each working as written."""
        refs = (
            f"--items {self.items.name} --stores {self.stores.name} "
            f"--customers {self.customers.name}"
        )
        facility = DEMO.facilities[0]
        return (
            "dhis2-lmis test-connection",
            f"dhis2-lmis {refs} check",
            f"dhis2-lmis {refs} pull order",
            f"dhis2-lmis {refs} pull receipt --format csv",
            # data set reports name items by their SOH_ codes, not by the items' universal
            # codes (those are the Order program's): customers alone name the facilities
            f"dhis2-lmis --customers {self.customers.name} pull stock-reports "
            f"--period {self.report_period}",
            "dhis2-lmis stock-on-hand",
            f"dhis2-lmis push-values {self.values.name} --period {self.report_period} "
            f"--org-unit {facility} --dry-run",
            f"dhis2-lmis {refs} sync --packing-list {self.packing_list.name}",
        )


def write_demo_files(directory: Path, fake: FakeDhis2) -> DemoFiles:
    """Write a ready configuration and mSupply files for the demo ``fake`` into ``directory``.

    Files of the same names are overwritten. The state file named in the configuration
    (``demo-state.sqlite``) is removed: it would hold cursors of an earlier demo server, whose
    events are gone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "demo-state.sqlite"
    for stale in (state, state.with_name(state.name + ".lock")):
        stale.unlink(missing_ok=True)
    config = directory / "dhis2-lmis.toml"
    config.write_text(
        "# Written by `dhis2-lmis demo --serve` for its offline DHIS2; see docs/configuration.md\n"
        + _toml(_settings(fake.url, state=str(state.resolve()))),
        encoding="utf-8",
    )
    items = _write_csv(
        directory / "items.csv",
        ("code", "name", "universal_code"),
        ((i.code, i.name, i.universal_code or "") for i in demo_items()),
    )
    stores = _write_csv(
        directory / "stores.csv",
        ("code", "name", _ORG_UNIT_FIELD),
        ((s.code, s.name, DEMO.warehouse) for s in demo_stores()),
    )
    customers = _write_csv(
        directory / "customers.csv",
        ("code", "name", _ORG_UNIT_FIELD),
        zip(DEMO.facility_codes, DEMO.facility_names, DEMO.facilities, strict=True),
    )
    packing = _write_csv(
        directory / "packing-list.csv",
        ("consignment", "item_code", "quantity"),
        (
            (number, code, _number(quantity))
            for number, lines in DEMO_PACKING_LIST.consignments.items()
            for code, quantity in lines
        ),
    )
    values = _write_csv(
        directory / "values.csv",
        ("data_element", "value"),
        ((code, str(50 + 5 * n)) for n, code in enumerate(DEMO.soh_data_element_codes)),
    )
    periods = sorted({v.period for v in fake.data_values})
    return DemoFiles(
        directory=directory,
        config=config,
        items=items,
        stores=stores,
        customers=customers,
        packing_list=packing,
        values=values,
        report_period=periods[-1] if periods else f"{fake.now:%Y%m}",
    )


def _toml(tables: Mapping[str, Mapping[str, object]]) -> str:
    """TOML text of flat tables of strings and booleans (all the demo configuration holds)."""
    out: list[str] = []
    for name, values in tables.items():
        out.append(f"\n[{name}]")
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else _toml_string(str(value))
            out.append(f"{key} = {text}")
    return "\n".join(out).lstrip("\n") + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- rendering -------------------------------------------------------------------------------------


def _number(value: Decimal | None) -> str:
    if value is None:
        return "?"
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def _facility_name(org_unit: str | None) -> str:
    if org_unit in DEMO.facilities:
        return DEMO.facility_names[DEMO.facilities.index(org_unit)]
    return org_unit or "?"


def _facility(org_unit: str | None, customer: Customer | None) -> str:
    if customer is not None:
        return f"{customer.name} ({customer.code})"
    return _facility_name(org_unit)


def _outcome(o: StockReceiptOutcome) -> str:
    r = o.receipt
    text = f"{o.status}: {r.reference}: {_number(r.quantity)} x {r.item_code} at "
    text += _facility_name(r.org_unit)
    if o.stock_on_hand_after is not None:
        text += (
            f" (stock on hand {_number(o.stock_on_hand_before or Decimal(0))} -> "
            f"{_number(o.stock_on_hand_after)})"
        )
    return text + (f" - {o.message}" if o.message else "")


def _values_sent(summary: ImportSummary) -> int:
    return summary.imported + summary.updated + summary.ignored


def _render(s: DemoSummary) -> list[str]:
    lines = [f"dhis2-lmis demo against {s.server}", "", "== Connection", f"  {s.connection}"]
    lines += ["", f"== Requisitions pulled: {len(s.requisitions)}"]
    for r in s.requisitions:
        when = r.occurred_at.date().isoformat() if r.occurred_at else "?"
        lines.append(f"  {r.event.uid}  {when}  {_facility(r.org_unit, r.customer)}")
        for line in r.lines:
            item = f"{line.item.code} {line.item.name}" if line.item else line.data_element
            lines.append(f"      {_number(line.quantity):>6} x {item}")
        lines += [f"      problem: {p}" for p in r.problems]
    lines += ["", f"== Consignment receipts pulled: {len(s.receipts)}"]
    for c in s.receipts:
        packed = ", ".join(
            f"{_number(q)} x {code}"
            for code, q in DEMO_PACKING_LIST.items_of(c.consignment_number or "")
        )
        lines.append(
            f"  {c.consignment_number or '?'}  {_facility(c.org_unit, c.customer)}: "
            f"{packed or 'not on the packing list'}"
        )
    push = s.stock_push
    lines += [
        "",
        f"== Stock receipts pushed to the STR program: {len(push.created)} created, "
        f"{len(push.already_pushed)} already there, {len(push.failed)} failed",
    ]
    lines += [f"  {_outcome(o)}" for o in push]
    lines += ["", "== Stock on hand (before -> after)"]
    # a stock card with no event yet holds 0: the figure the stock push builds on
    before = {(lv.org_unit, lv.item_code): lv.stock_on_hand for lv in s.stock_before}
    for lv in s.stock_after:
        old = before.get((lv.org_unit, lv.item_code)) or Decimal(0)
        mark = "" if old == lv.stock_on_hand else "  (received)"
        lines.append(
            f"  {_facility_name(lv.org_unit):<24} {lv.item_code or '?':<9} "
            f"{_number(old):>5} -> {_number(lv.stock_on_hand)}{mark}"
        )
    if s.layout is None:
        lines += ["", f"== Stock on hand pushed to data set {DEMO.data_set}, period {s.period}"]
    else:
        lines += [
            "",
            f"== Stock by measure pushed to data set {_LAYOUT_DATA_SET} (layout {s.layout}), "
            f"period {s.period}",
        ]
    lines.append(f"  {s.data_push}")
    if s.data_push.ignored and not s.data_push.conflicts:
        # a bare "4 ignored" after SUCCESS reads like lost values; here it means "no change"
        lines.append(
            f"  ({s.data_push.ignored} ignored: already stored with that value, which "
            "newer DHIS2 versions count as ignored; docs/versions.md)"
        )
    if s.layout is not None:
        lines += ["", f"== Read back as stock reports: {len(s.stock_reports)}"]
        for report in s.stock_reports:
            for value in report.lines:
                item = value.item.code if value.item else value.data_element
                lines.append(
                    f"  {_facility_name(report.org_unit):<24} {item:<9} "
                    f"{value.measure or '?':<18} {_number(value.value)}"
                )
            lines += [f"  problem: {p}" for p in report.problems]
    lines += [
        "",
        "== Summary",
        f"  {len(s.requisitions)} requisitions, {len(s.receipts)} receipts, "
        f"{len(push.created)} stock receipts written, {_values_sent(s.data_push)} stock-on-hand "
        f"values pushed for {s.period}, in {s.seconds:.1f} s: {'OK' if s.ok else 'with problems'}",
    ]
    return lines
