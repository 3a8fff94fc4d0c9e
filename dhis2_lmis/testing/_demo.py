"""A small demo LMIS world: facilities, items, the Order / Receipt / STR programs, a data set.

``seed_demo(fake)`` fills a FakeDhis2; ``DEMO`` names every UID so the CLI demo and tests can
configure themselves without looking anything up.

The seeded figures agree with each other, as a real site's would: each facility's stock cards
in the STR program hold one stock-on-hand event each, and the data set holds the same figures as
that month's stock-on-hand report, so ``pull stock-reports`` and ``stock-on-hand`` tell one story.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dhis2_lmis.testing._host import Seeding

__all__ = ["DEMO", "DemoIds", "seed_demo"]


@dataclass(frozen=True)
class DemoIds:
    """The UIDs and codes of the demo world. Tuples indexed like ``item_codes``/``facilities``."""

    username: str
    password: str
    country: str
    district: str
    warehouse: str
    facilities: tuple[str, ...]
    facility_codes: tuple[str, ...]
    facility_names: tuple[str, ...]
    item_codes: tuple[str, ...]
    item_names: tuple[str, ...]
    order_program: str
    order_stage: str
    order_data_elements: tuple[str, ...]
    comment_data_element: str
    receipt_program: str
    receipt_stage: str
    consignment_data_element: str
    str_program: str
    str_stage: str
    stock_on_hand_data_element: str
    stock_received_data_element: str
    item_code_attribute: str
    data_set: str
    soh_data_elements: tuple[str, ...]
    soh_data_element_codes: tuple[str, ...]
    tracked_entities: tuple[tuple[str, ...], ...]
    enrollments: tuple[tuple[str, ...], ...]

    def order_data_element(self, item_code: str) -> str:
        """The Order program data element UID of an item code."""
        return self.order_data_elements[self.item_codes.index(item_code)]

    def soh_data_element(self, item_code: str) -> str:
        """The data set's stock-on-hand data element UID of an item code."""
        return self.soh_data_elements[self.item_codes.index(item_code)]


_ITEMS = (
    ("AMOX250", "Amoxicillin 250mg capsules"),
    ("PARA500", "Paracetamol 500mg tablets"),
    ("ORS200", "Oral rehydration salts sachet"),
    ("ZINC20", "Zinc sulfate 20mg tablets"),
    ("COTRI480", "Cotrimoxazole 480mg tablets"),
)

DEMO = DemoIds(
    username="admin",
    password="district",  # noqa: S106 - the well-known DHIS2 demo password
    country="LmCountry01",
    district="LmDistNrth1",
    warehouse="LmCmsStore1",
    facilities=("LmFacility1", "LmFacility2", "LmFacility3"),
    facility_codes=("FAC001", "FAC002", "FAC003"),
    facility_names=("Riverside Health Centre", "Hilltop Dispensary", "Lakeview Clinic"),
    item_codes=tuple(code for code, _ in _ITEMS),
    item_names=tuple(name for _, name in _ITEMS),
    order_program="LmOrderProg",
    order_stage="LmOrderStge",
    order_data_elements=("LmOrdAmox01", "LmOrdPara01", "LmOrdOrs001", "LmOrdZinc01", "LmOrdCotr01"),
    comment_data_element="LmOrdCommnt",
    receipt_program="LmRcptProg1",
    receipt_stage="LmRcptStge1",
    consignment_data_element="LmConsignNo",
    str_program="LmStrProg01",
    str_stage="LmStrSohStg",
    stock_on_hand_data_element="LmStrSoh001",
    stock_received_data_element="LmStrRecv01",
    item_code_attribute="LmItemCode1",
    data_set="LmSohDatSet",
    soh_data_elements=("LmSohAmox01", "LmSohPara01", "LmSohOrs001", "LmSohZinc01", "LmSohCotr01"),
    soh_data_element_codes=tuple(f"SOH_{code}" for code, _ in _ITEMS),
    tracked_entities=tuple(
        tuple(f"LmTe{f}{i}{'x' * 5}" for i in range(len(_ITEMS))) for f in range(1, 4)
    ),
    enrollments=tuple(
        tuple(f"LmEn{f}{i}{'y' * 5}" for i in range(len(_ITEMS))) for f in range(1, 4)
    ),
)


def seed_demo(fake: Seeding) -> DemoIds:
    """Fill ``fake`` with the demo world and return its ids (``DEMO``)."""
    d = DEMO
    fake.add_org_unit(d.country, "DL", "Demoland")
    fake.add_org_unit(d.district, "DL-N", "North District", parent=d.country)
    fake.add_org_unit(d.warehouse, "CMS001", "Central Medical Store", parent=d.country)
    for uid, code, name in zip(d.facilities, d.facility_codes, d.facility_names, strict=True):
        fake.add_org_unit(uid, code, name, parent=d.district)
    for uid, code, name in zip(d.order_data_elements, d.item_codes, d.item_names, strict=True):
        fake.add_data_element(
            uid, code, name, value_type="INTEGER_ZERO_OR_POSITIVE", domain_type="TRACKER"
        )
    fake.add_data_element(
        d.comment_data_element,
        "ORDER_COMMENT",
        "Order comment",
        value_type="LONG_TEXT",
        domain_type="TRACKER",
    )
    fake.add_data_element(
        d.consignment_data_element,
        "CONSIGNMENT_NO",
        "Consignment number",
        value_type="TEXT",
        domain_type="TRACKER",
    )
    fake.add_data_element(
        d.stock_on_hand_data_element,
        "STOCK_ON_HAND",
        "Stock on hand",
        value_type="INTEGER_ZERO_OR_POSITIVE",
        zero_is_significant=True,
        domain_type="TRACKER",
    )
    fake.add_data_element(
        d.stock_received_data_element,
        "STOCK_RECEIVED",
        "Stock receipt",
        value_type="INTEGER_POSITIVE",
        domain_type="TRACKER",
    )
    for uid, code, name in zip(
        d.soh_data_elements, d.soh_data_element_codes, d.item_names, strict=True
    ):
        fake.add_data_element(
            uid,
            code,
            f"{name} stock on hand",
            value_type="INTEGER_ZERO_OR_POSITIVE",
            zero_is_significant=True,
        )
    fake.add_tracked_entity_attribute(d.item_code_attribute, "ITEM_CODE", "Item code")
    everywhere = (*d.facilities, d.warehouse)
    fake.add_program(
        d.order_program,
        "Order program",
        code="ORDER",
        stages={d.order_stage: (*d.order_data_elements, d.comment_data_element)},
        stage_names={d.order_stage: "Requisition"},
        org_units=d.facilities,
    )
    fake.add_program(
        d.receipt_program,
        "Receipt program",
        code="RECEIPT",
        stages={d.receipt_stage: (d.consignment_data_element, *d.order_data_elements)},
        stage_names={d.receipt_stage: "Consignment receipt"},
        org_units=d.facilities,
    )
    fake.add_program(
        d.str_program,
        "Real-Time Stock",
        code="STR",
        program_type="WITH_REGISTRATION",
        stages={d.str_stage: (d.stock_on_hand_data_element, d.stock_received_data_element)},
        stage_names={d.str_stage: "Stock on Hand"},
        attributes=(d.item_code_attribute,),
        org_units=everywhere,
    )
    fake.add_data_set(
        d.data_set,
        "LMIS_SOH",
        "Monthly stock on hand",
        period_type="Monthly",
        data_elements=d.soh_data_elements,
        org_units=everywhere,  # the central store reports its stock on hand too
    )
    now = fake.now
    day = dt.timedelta(days=1)
    for f, facility in enumerate(d.facilities):
        for i, code in enumerate(d.item_codes):
            fake.add_tracked_entity(
                d.tracked_entities[f][i],
                facility,
                d.str_program,
                attributes={d.item_code_attribute: code},
                enrollment_uid=d.enrollments[f][i],
                enrolled_at=now - 90 * day,
            )
            if i < 3:
                counted_at = now - (20 - i) * day
                fake.add_event(
                    None,
                    d.str_program,
                    facility,
                    status="COMPLETED",
                    tracked_entity=d.tracked_entities[f][i],
                    data_values={d.stock_on_hand_data_element: 100 + 10 * i + f},
                    occurred_at=counted_at,
                    updated_at=counted_at,
                )
                # the same count, reported in that month's stock-on-hand data set
                fake.add_data_value(
                    d.soh_data_elements[i], f"{counted_at:%Y%m}", facility, 100 + 10 * i + f
                )
    for n in range(6):
        facility = d.facilities[n % 3]
        when = now - (30 - 3 * n) * day
        fake.add_event(
            None,
            d.order_program,
            facility,
            status="COMPLETED",
            data_values={
                d.order_data_elements[n % 5]: 100 + 20 * n,
                d.order_data_elements[(n + 1) % 5]: 50 + 5 * n,
                d.comment_data_element: f"Monthly order {n + 1}",
            },
            occurred_at=when,
            updated_at=when + dt.timedelta(hours=2),
        )
    for n in range(2):
        when = now - (3 - n) * day
        fake.add_event(
            None,
            d.order_program,
            d.facilities[n],
            status="ACTIVE",
            data_values={d.order_data_elements[2]: 40 + n},
            occurred_at=when,
            updated_at=when,
        )
    for n in range(3):
        when = now - (10 - 2 * n) * day
        fake.add_event(
            None,
            d.receipt_program,
            d.facilities[n],
            status="COMPLETED",
            data_values={
                d.consignment_data_element: f"CN-2024-{1001 + n}",
                d.order_data_elements[0]: 100 + 20 * n,
            },
            occurred_at=when,
            updated_at=when + dt.timedelta(hours=1),
        )
    return d
