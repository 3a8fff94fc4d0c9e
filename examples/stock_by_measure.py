"""A store's stock by item and measure, into an MSR/RTS-style data set and back.

The data set has one data element per item and a category combo "Stock measures" whose
category option combos are the measures (docs/layouts.md, shape 1). The ``[data_set]`` section
names them; the library places each value and reads each report line back as item and measure.

Runs against the offline demo DHIS2 (no network, no configuration file), which it extends with
such a data set:

    python examples/stock_by_measure.py
"""

from __future__ import annotations

import sys

from dhis2_lmis import Dhis2Config, Dhis2Lmis, Item, Store
from dhis2_lmis.testing import DEMO, FakeDhis2

DATA_SET, MEASURES = "LmMsrDatSet", "LmMeasures1"
SOH, RECEIVED = "LmCocSoh001", "LmCocRecv01"
ELEMENTS = {"MSR_AMOX250": "LmMsrAmox01", "MSR_PARA500": "LmMsrPara01"}

ITEMS = (
    Item("AMOX250", "Amoxicillin 250mg capsules", universal_code="MSR_AMOX250"),
    Item("PARA500", "Paracetamol 500mg tablets", universal_code="MSR_PARA500"),
)
STORE = Store("RIV01", "Riverside Health Centre store", {"Dhis2Code": DEMO.facilities[0]})

# What mSupply would report for the store at the end of November 2026.
STOCK = {
    ITEMS[0]: {"stock_on_hand": 610, "received_quantity": 500},
    ITEMS[1]: {"stock_on_hand": 1200, "received_quantity": 0},
}


def add_msr_data_set(fake: FakeDhis2) -> None:
    """The MSR-style metadata: measures as category option combos of every item's element."""
    fake.add_category_combo(
        MEASURES,
        "STOCK_MEASURES",
        "Stock measures",
        {SOH: "SOH", RECEIVED: "RECEIVED"},
        names={SOH: "Stock on hand", RECEIVED: "Stock receipt"},
    )
    for code, uid in ELEMENTS.items():
        fake.add_data_element(uid, code, code, category_combo=MEASURES, zero_is_significant=True)
    fake.add_data_set(
        DATA_SET,
        "MSR",
        "Monthly stock report",
        data_elements=tuple(ELEMENTS.values()),
        org_units=DEMO.facilities,
    )


def config_for(url: str) -> Dhis2Config:
    return Dhis2Config.from_dict(
        {
            "dhis2": {"url": url, "username": DEMO.username, "password": DEMO.password},
            "lmis": {"data_set": DATA_SET, "data_element_id_scheme": "CODE"},
            "data_set": {
                "item_is": "data_element",
                "measures": {"stock_on_hand": "Stock on hand", "received_quantity": "RECEIVED"},
            },
        },
        environ={},
    )


def main() -> int:
    with FakeDhis2.demo() as fake:
        add_msr_data_set(fake)
        with Dhis2Lmis(config_for(fake.url), items=ITEMS, stores=[STORE]) as lmis:
            problems = [f for f in lmis.validate_setup() if f.severity == "error"]
            for finding in problems:
                print(finding)
            builder = lmis.stock_value_set("202611", store=STORE, values=STOCK)
            summary = lmis.push_data_values(builder)
            print(f"pushed: {summary}")
            for report in lmis.fetch_stock_reports("202611", org_unit=DEMO.facilities[0]):
                for line in report.lines:
                    item = line.item.code if line.item else "?"
                    measure = line.measure or "?"  # None: the value matches no measure
                    print(f"{report.period} {item:8} {measure:18} {line.value}")
                for problem in report.problems:
                    print(f"problem: {problem}")
        return 0 if summary.ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
