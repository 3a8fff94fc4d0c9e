"""The domain fetchers through the Dhis2Lmis facade: requisitions, receipts, STR stock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.errors import ConfigError, RequestRejectedError
from dhis2_lmis.lmis.models import Customer
from dhis2_lmis.lmis.stock import StockReceipt
from dhis2_lmis.testing import FakeDhis2
from tests._lmis_world import (
    AMOX,
    COMMENT,
    CONSIGNMENT,
    CUSTOMERS,
    EN_AMOX,
    EN_PARA,
    FACILITY,
    ITEM_CODE,
    ITEMS,
    ORDER,
    ORDER_STAGE,
    PARA,
    RECEIPT,
    RECEIPT_STAGE,
    ROOT,
    SOH,
    STORES,
    STR,
    STR_STAGE,
    T0,
    TE_AMOX,
    TE_PARA,
    VERSIONS,
    add_stock_cards,
    seed,
    settings,
)


def config(fake: FakeDhis2, **lmis: object) -> Dhis2Config:
    return Dhis2Config.from_dict(settings(fake, lmis=lmis))


@pytest.fixture(params=VERSIONS)
def fake(request: pytest.FixtureRequest, fake_dhis2_factory: Callable[..., FakeDhis2]) -> FakeDhis2:
    return seed(fake_dhis2_factory(request.param))


def lmis_for(fake: FakeDhis2, **kwargs: object) -> Dhis2Lmis:
    return Dhis2Lmis(
        config(fake, name_field="Dhis2Code"),
        items=ITEMS,
        customers=CUSTOMERS,
        stores=STORES,
        **kwargs,  # type: ignore[arg-type]
    )


def order(fake: FakeDhis2, uid: str, values: dict[str, str], org_unit: str = FACILITY) -> None:
    fake.add_event(
        uid,
        ORDER,
        org_unit,
        program_stage=ORDER_STAGE,
        data_values=values,
        occurred_at=T0,
        updated_at=T0,
        completed_at=T0,
    )


def test_requisition_lines_resolve_items_and_quantities(fake: FakeDhis2) -> None:
    order(fake, "Order000001", {AMOX: "1200", PARA: "35.5", COMMENT: "urgent"})
    (requisition,) = lmis_for(fake).fetch_completed_requisitions()
    lines = {line.item.code if line.item else None: line.quantity for line in requisition.lines}
    assert lines == {"I-AMOX": Decimal("1200"), "I-PARA": Decimal("35.5")}
    assert requisition.other_values == {"COMMENT": "urgent"}
    assert requisition.customer is not None and requisition.customer.code == "C-FAC-A"
    assert requisition.problems == ()
    assert requisition.completed_at is not None


def test_unmapped_numeric_value_stays_a_line_with_a_problem(fake: FakeDhis2) -> None:
    fake.add_data_element("DeUnknown01", "IBU400", "Ibuprofen", domain_type="TRACKER")
    order(fake, "Order000002", {AMOX: "10", "DeUnknown01": "40"})
    (requisition,) = lmis_for(fake).fetch_completed_requisitions()
    unmapped = [line for line in requisition.lines if line.item is None]
    assert [(line.data_element, line.quantity) for line in unmapped] == [("IBU400", Decimal(40))]
    assert [p.kind for p in requisition.problems] == ["unknown_item"]
    assert "IBU400" in requisition.problems[0].message


def test_non_numeric_and_negative_quantities_are_problems_not_exceptions(
    fake: FakeDhis2,
) -> None:
    fake.add_data_element("DeText00001", None, "Text", value_type="TEXT", domain_type="TRACKER")
    order(fake, "Order000003", {AMOX: "-5"})
    order(fake, "Order000004", {PARA: "12"})
    requisitions = {r.event.uid: r for r in lmis_for(fake).fetch_completed_requisitions()}
    assert [p.kind for p in requisitions["Order000003"].problems] == ["negative"]
    assert requisitions["Order000004"].problems == ()


def test_unknown_org_unit_is_reported_on_the_record(fake: FakeDhis2) -> None:
    fake.add_org_unit("FacilityZ01", "FAC_Z", "Facility Z", parent=ROOT)
    order(fake, "Order000005", {AMOX: "3"}, org_unit="FacilityZ01")
    (requisition,) = lmis_for(fake).fetch_completed_requisitions()
    assert requisition.customer is None and requisition.store is None
    assert [p.kind for p in requisition.problems] == ["unknown_org_unit"]
    assert "FacilityZ01" in requisition.problems[0].message


def test_without_items_every_numeric_value_is_a_line(fake: FakeDhis2) -> None:
    order(fake, "Order000006", {AMOX: "7", COMMENT: "note"})
    (requisition,) = Dhis2Lmis(config(fake)).fetch_completed_requisitions()
    assert [(line.item, line.quantity) for line in requisition.lines] == [(None, Decimal(7))]
    assert requisition.other_values == {"COMMENT": "note"}


def test_since_brings_back_a_recompleted_event(fake: FakeDhis2) -> None:
    order(fake, "Order000007", {AMOX: "5"})
    lmis = lmis_for(fake)
    assert len(list(lmis.fetch_completed_requisitions())) == 1
    fake.now = T0 + dt.timedelta(hours=2)
    fake.touch_event("Order000007", data_values={AMOX: "6"})
    later = list(lmis.fetch_completed_requisitions(since=T0 + dt.timedelta(hours=1)))
    assert [line.quantity for line in later[0].lines] == [Decimal(6)]


def test_one_event_per_line_layout(fake: FakeDhis2) -> None:
    fake.add_data_element("DeItemRef01", "ITEM", "Item", value_type="TEXT", domain_type="TRACKER")
    fake.add_data_element("DeQuantity1", "QTY", "Quantity", domain_type="TRACKER")
    order(fake, "Order000008", {"DeItemRef01": "PARA500", "DeQuantity1": "60"})
    settings = config(fake, name_field="Dhis2Code").to_dict()
    settings["dhis2"]["password"] = "district"  # type: ignore[index]
    settings["order"] = {"item_data_element": "ITEM", "quantity_data_element": "QTY"}
    lmis = Dhis2Lmis(Dhis2Config.from_dict(settings), items=ITEMS, customers=CUSTOMERS)
    (requisition,) = lmis.fetch_completed_requisitions()
    (line,) = requisition.lines
    assert line.item is not None and line.item.code == "I-PARA"
    assert line.quantity == Decimal(60)


def test_receipts_carry_the_consignment_number(fake: FakeDhis2) -> None:
    fake.add_event(
        "Receipt0001",
        RECEIPT,
        FACILITY,
        program_stage=RECEIPT_STAGE,
        data_values={CONSIGNMENT: "CN-2026-0042"},
        occurred_at=T0,
        updated_at=T0,
    )
    fake.add_event("Receipt0002", RECEIPT, FACILITY, program_stage=RECEIPT_STAGE, updated_at=T0)
    receipts = {r.event.uid: r for r in lmis_for(fake).fetch_completed_receipts()}
    assert receipts["Receipt0001"].consignment_number == "CN-2026-0042"
    assert receipts["Receipt0001"].customer is not None
    assert [p.kind for p in receipts["Receipt0002"].problems] == ["missing_value"]


def stock_event(
    fake: FakeDhis2, uid: str, te: str, enrollment: str, occurred: dt.datetime, soh: int
) -> None:
    fake.add_event(
        uid,
        STR,
        FACILITY,
        program_stage=STR_STAGE,
        tracked_entity=te,
        enrollment=enrollment,
        data_values={SOH: str(soh)},
        occurred_at=occurred,
        updated_at=occurred,
    )


def test_stock_transactions_and_latest_stock_on_hand(fake: FakeDhis2) -> None:
    add_stock_cards(fake, "AMOX250", "PARA500")
    stock_event(fake, "StockEv0001", TE_AMOX, EN_AMOX, T0, 100)
    stock_event(fake, "StockEv0002", TE_AMOX, EN_AMOX, T0 + dt.timedelta(days=2), 80)
    stock_event(fake, "StockEv0003", TE_AMOX, EN_AMOX, T0 + dt.timedelta(days=1), 90)
    stock_event(fake, "StockEv0004", TE_PARA, EN_PARA, T0, 12)
    lmis = lmis_for(fake)
    transactions = list(lmis.fetch_stock_transactions())
    assert {t.item_code for t in transactions} == {"AMOX250", "PARA500"}
    levels = {level.item_code: level.stock_on_hand for level in lmis.fetch_stock_on_hand()}
    assert levels == {"AMOX250": Decimal(80), "PARA500": Decimal(12)}


def test_pull_returns_raw_events_of_one_program(fake: FakeDhis2) -> None:
    order(fake, "Order000009", {AMOX: "1"})
    fake.add_event("Active00001", ORDER, FACILITY, status="ACTIVE", program_stage=ORDER_STAGE)
    uids = {event.uid for event in lmis_for(fake).pull("order")}
    assert uids == {"Order000009", "Active00001"}


def test_unknown_program_names_the_setting_and_suggests_check(fake: FakeDhis2) -> None:
    cfg = config(fake)
    cfg = attrs.evolve(cfg, programs=attrs.evolve(cfg.programs, order="NoSuchProg1"))

    with Dhis2Lmis(cfg) as lmis, pytest.raises(RequestRejectedError) as raised:
        list(lmis.fetch_completed_requisitions())

    message = str(raised.value)
    assert 'programs.order: DHIS2 has no program "NoSuchProg1"' in message
    assert "dhis2-lmis check" in message
    assert raised.value.status == 400


def test_rejection_about_something_else_keeps_dhis2s_words(fake: FakeDhis2) -> None:
    with lmis_for(fake) as lmis, pytest.raises(RequestRejectedError) as raised:
        list(lmis.pull("order", org_unit="NoSuchUnit1"))

    assert "programs.order" not in str(raised.value)
    assert "NoSuchUnit1" in str(raised.value)


def test_item_codes_are_read_afresh_by_each_fetch(fake: FakeDhis2) -> None:
    """A long-lived client sees an item code relabelled in DHIS2 on its next read."""
    add_stock_cards(fake, "AMOX250")
    stock_event(fake, "StockEv0001", TE_AMOX, EN_AMOX, T0, 100)
    lmis = lmis_for(fake)
    (before,) = lmis.fetch_stock_transactions()
    fake.world.tracked_entities[TE_AMOX].attributes[ITEM_CODE] = "AMOX500"
    (after,) = lmis.fetch_stock_transactions()

    assert (before.item_code, after.item_code) == ("AMOX250", "AMOX500")


def test_each_program_needs_only_its_own_setting(fake: FakeDhis2) -> None:
    order(fake, "Order000001", {AMOX: "5"})
    cfg = config(fake, name_field="Dhis2Code")
    cfg = attrs.evolve(cfg, programs=attrs.evolve(cfg.programs, receipt=None, str=None))

    with Dhis2Lmis(cfg, items=ITEMS) as lmis:
        (requisition,) = lmis.fetch_completed_requisitions()
        for fetch, key in [
            (lmis.fetch_completed_receipts, "receipt"),
            (lmis.fetch_stock_transactions, "str"),
        ]:
            with pytest.raises(ConfigError, match=rf"programs\.{key} is not set"):
                list(fetch())
        with pytest.raises(ConfigError, match=r"programs\.str is not set"):
            lmis.push_stock_receipts([StockReceipt(FACILITY, "AMOX250", 5, "CI-1")])

    assert requisition.lines[0].quantity == Decimal(5)


def test_pushed_receipts_read_back_through_the_same_str_settings(fake: FakeDhis2) -> None:
    add_stock_cards(fake, "AMOX250")
    stock_event(fake, "StockEv0001", TE_AMOX, EN_AMOX, T0, 100)
    lmis = lmis_for(fake)
    report = lmis.push_stock_receipts([StockReceipt(FACILITY, "AMOX250", 25, "CI-0042")])
    assert [o.status for o in report.outcomes] == ["created"]

    (pushed,) = (t for t in lmis.fetch_stock_transactions() if t.received_quantity is not None)
    assert (pushed.item_code, pushed.received_quantity, pushed.stock_on_hand) == (
        "AMOX250",
        Decimal(25),
        Decimal(125),
    )


def test_a_pages_org_units_are_looked_up_together_by_code(fake: FakeDhis2) -> None:
    """With codes in the store fields, events carry UIDs: one look-up per page learns them
    all, not one request per facility (a national program has thousands)."""
    customers = []
    for n in range(4):
        uid, code = f"FacilityC0{n}", f"FAC_C{n}"
        fake.add_org_unit(uid, code, f"Facility C{n}", parent=ROOT)
        customers.append(Customer(f"C-{n}", f"Facility C{n}", custom_fields={"Dhis2Code": code}))
        order(fake, f"OrderCode0{n}", {AMOX: "1"}, org_unit=uid)
    lmis = Dhis2Lmis(
        config(fake, name_field="Dhis2Code", org_unit_id_scheme="CODE"),
        items=ITEMS,
        customers=customers,
        stores=STORES,
    )
    before = len(fake.requests)
    requisitions = list(lmis.fetch_completed_requisitions())
    lookups = [r for r in fake.requests[before:] if r.path.endswith("/organisationUnits")]
    assert sorted(r.customer.code for r in requisitions if r.customer) == [
        "C-0", "C-1", "C-2", "C-3",
    ]  # fmt: skip
    assert len(lookups) == 1
