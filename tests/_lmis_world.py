"""The small LMIS world the domain tests share: facilities, items, Order, Receipt and STR.

One definition for the tests of the readers (test_programs.py), the stock pusher
(test_stock.py), the sync (test_sync.py) and the fault matrix (reliability/test_fault_matrix.py),
so a facility, an item or a program stage means the same thing in all of them and a change to the
world is made once. ``seed(fake)`` adds metadata only: each test adds the events it is about
(and ``add_stock_cards`` the STR program's tracked entities it needs), so what a test asserts
stays next to what it put there.

Imported as ``tests._lmis_world`` (like ``tests._cassettes``): ``--import-mode=importlib`` gives
test modules no shared import path of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

from dhis2_lmis import Customer, Item, Store
from dhis2_lmis.testing import FakeDhis2

__all__ = [
    "AGG_AMOX",
    "AGG_PARA",
    "AMOX",
    "COMMENT",
    "CONSIGNMENT",
    "CUSTOMERS",
    "DATA_SET",
    "EN_AMOX",
    "EN_DONE",
    "EN_IBU_B",
    "EN_PARA",
    "FACILITY",
    "FACILITY_B",
    "HOUR",
    "ITEMS",
    "ITEM_CODE",
    "ORDER",
    "ORDER_STAGE",
    "PARA",
    "RECEIPT",
    "RECEIPT_STAGE",
    "RECEIVED",
    "ROOT",
    "SOH",
    "STOCK_CARDS",
    "STORES",
    "STR",
    "STR_STAGE",
    "T0",
    "TE_AMOX",
    "TE_DONE",
    "TE_IBU_B",
    "TE_PARA",
    "VERSIONS",
    "WAREHOUSE",
    "StockCard",
    "add_stock_cards",
    "seed",
    "settings",
]

# The tracker versions whose wire differs: 2.38 answers in "instances", 2.41 renamed the org unit
# parameters, 2.42 has no /api/events.
VERSIONS = ("2.38", "2.41", "2.42")
T0 = dt.datetime(2026, 11, 2, 9, 0, 0)
HOUR = dt.timedelta(hours=1)

ORDER, ORDER_STAGE = "OrderProg01", "OrderStage1"
RECEIPT, RECEIPT_STAGE = "ReceiptPrg1", "ReceiptStg1"
STR, STR_STAGE = "StrProgram1", "StrStage001"
ROOT, WAREHOUSE = "RootUnit001", "Warehouse01"
FACILITY, FACILITY_B = "FacilityA01", "FacilityB01"
AMOX, PARA, COMMENT = "DeAmox00001", "DePara00001", "DeComment01"
CONSIGNMENT = "DeConsign01"
SOH, RECEIVED, ITEM_CODE = "DeSoh000001", "DeRecv00001", "TeaItemCode"
DATA_SET, AGG_AMOX, AGG_PARA = "DataSetSoh1", "DeAggAmox01", "DeAggPara01"

# The mSupply side of the same world: items by universal code, facility A as a customer, the
# warehouse as a store (both matched on their "Dhis2Code" custom field).
ITEMS = (
    Item("I-AMOX", "Amoxicillin 250mg", universal_code="AMOX250"),
    Item("I-PARA", "Paracetamol 500mg", universal_code="PARA500"),
)
CUSTOMERS = (Customer("C-FAC-A", "Facility A", custom_fields={"Dhis2Code": FACILITY}),)
STORES = (Store("S-WH", "Central warehouse", custom_fields={"Dhis2Code": WAREHOUSE}),)


class StockCard(NamedTuple):
    """One item's tracked entity in the STR program at one facility, and its enrollment."""

    tracked_entity: str
    enrollment: str
    org_unit: str
    item_code: str
    enrollment_status: str = "ACTIVE"


TE_AMOX, EN_AMOX = "TeAmoxA0001", "EnAmoxA0001"
TE_PARA, EN_PARA = "TeParaA0001", "EnParaA0001"
TE_IBU_B, EN_IBU_B = "TeIbuB00001", "EnIbuB00001"
TE_DONE, EN_DONE = "TeDoneA0001", "EnDoneA0001"
# By item code; DISCONTINUED's enrollment is closed, IBU200 is stocked at facility B only.
STOCK_CARDS = {
    card.item_code: card
    for card in (
        StockCard(TE_AMOX, EN_AMOX, FACILITY, "AMOX250"),
        StockCard(TE_PARA, EN_PARA, FACILITY, "PARA500"),
        StockCard(TE_IBU_B, EN_IBU_B, FACILITY_B, "IBU200"),
        StockCard(TE_DONE, EN_DONE, FACILITY, "DISCONTINUED", "COMPLETED"),
    )
}


def seed(fake: FakeDhis2) -> FakeDhis2:
    """Add the world's metadata to ``fake`` (no events, no stock cards) and return it."""
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A", parent=ROOT)
    fake.add_org_unit(FACILITY_B, "FAC_B", "Facility B", parent=ROOT)
    fake.add_org_unit(WAREHOUSE, "WH", "Central warehouse", parent=ROOT)
    fake.add_data_element(AMOX, "AMOX250", "Amoxicillin 250mg", domain_type="TRACKER")
    fake.add_data_element(PARA, "PARA500", "Paracetamol 500mg", domain_type="TRACKER")
    fake.add_data_element(COMMENT, "COMMENT", "Comment", value_type="TEXT", domain_type="TRACKER")
    fake.add_data_element(
        CONSIGNMENT, "CONSIGNMENT_NO", "Consignment", value_type="TEXT", domain_type="TRACKER"
    )
    fake.add_data_element(SOH, "SOH", "Stock on hand", domain_type="TRACKER")
    fake.add_data_element(RECEIVED, "RECEIVED", "Stock received", domain_type="TRACKER")
    fake.add_data_element(AGG_AMOX, "SOH_AMOX250", "SOH Amoxicillin", zero_is_significant=True)
    fake.add_data_element(AGG_PARA, "SOH_PARA500", "SOH Paracetamol", zero_is_significant=True)
    fake.add_data_set(
        DATA_SET,
        "LMIS_SOH",
        "Stock on hand",
        data_elements=(AGG_AMOX, AGG_PARA),
        org_units=(FACILITY,),
    )
    fake.add_tracked_entity_attribute(ITEM_CODE, "ITEM_CODE", "Item code")
    fake.add_program(ORDER, "Order", stages={ORDER_STAGE: (AMOX, PARA, COMMENT)})
    fake.add_program(RECEIPT, "Receipt", stages={RECEIPT_STAGE: (CONSIGNMENT, AMOX, PARA)})
    fake.add_program(
        STR,
        "Real-Time Stock",
        program_type="WITH_REGISTRATION",
        stages={STR_STAGE: (SOH, RECEIVED)},
        attributes=(ITEM_CODE,),
    )
    return fake


def add_stock_cards(fake: FakeDhis2, *item_codes: str) -> None:
    """Enroll the stock cards of ``item_codes`` (all four when none is named) in the STR program."""
    for code in item_codes or tuple(STOCK_CARDS):
        card = STOCK_CARDS[code]
        fake.add_tracked_entity(
            card.tracked_entity,
            card.org_unit,
            STR,
            attributes={ITEM_CODE: card.item_code},
            enrollment_uid=card.enrollment,
            enrollment_status=card.enrollment_status,
            enrolled_at=T0,
        )


def settings(fake: FakeDhis2, **sections: Mapping[str, object]) -> dict[str, object]:
    """The configuration of the world as ``Dhis2Config.from_dict`` reads it.

    ``admin``/``district``, data elements named by code, the three programs, the consignment data
    element and the STR rows; each keyword is a section whose keys replace or extend the default
    ones (``dhis2={"password": "wrong"}`` keeps the URL and user).
    """
    row = {"program_stage": STR_STAGE, "attribute": ITEM_CODE}
    data: dict[str, dict[str, object]] = {
        "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
        "lmis": {"data_element_id_scheme": "CODE"},
        "programs": {"order": ORDER, "receipt": RECEIPT, "str": STR},
        "receipt": {"consignment_data_element": CONSIGNMENT},
        "data_elements": {
            "stock_on_hand": {"data_element": SOH, **row},
            "received_quantity": {"data_element": RECEIVED, **row},
        },
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return dict(data)
