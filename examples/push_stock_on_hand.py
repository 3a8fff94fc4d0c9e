"""The monthly stock-on-hand push: one data value per item into the configured data set.

Runs against the offline demo DHIS2 (no network, no configuration file):

    python examples/push_stock_on_hand.py

It validates first (``dry_run=True``: DHIS2 checks everything and saves nothing), then pushes
for real, and prints both import summaries.
"""

from __future__ import annotations

import sys
from datetime import date

from dhis2_lmis import Dhis2Config, Dhis2Lmis, Item, Store
from dhis2_lmis.testing import DEMO, FakeDhis2

# The data set's data elements are coded SOH_<item>; each item keeps that code in user field 1.
ITEMS = (
    Item("AMOX250", "Amoxicillin 250mg capsules", custom_fields={"user_field_1": "SOH_AMOX250"}),
    Item("PARA500", "Paracetamol 500mg tablets", custom_fields={"user_field_1": "SOH_PARA500"}),
    Item("ORS200", "Oral rehydration salts sachet", custom_fields={"user_field_1": "SOH_ORS200"}),
    Item("ZINC20", "Zinc sulfate 20mg tablets", custom_fields={"user_field_1": "SOH_ZINC20"}),
    Item(
        "COTRI480",
        "Cotrimoxazole 480mg tablets",
        custom_fields={"user_field_1": "SOH_COTRI480"},
        include_in_dhis2_push=False,  # "Include in DHIS2 data push" unticked: never sent
    ),
)

# The facility store whose stock is reported; its "Dhis2Code" custom field names the org unit.
STORE = Store("RIV01", "Riverside Health Centre store", {"Dhis2Code": DEMO.facilities[0]})

# Stock on hand at the end of the month, by item code (what mSupply would report).
STOCK_ON_HAND = {"AMOX250": 340, "PARA500": 1200.0, "ORS200": 0, "ZINC20": 57, "COTRI480": 80}


def config_for(url: str) -> Dhis2Config:
    return Dhis2Config.from_dict(
        {
            "dhis2": {"url": url, "username": DEMO.username, "password": DEMO.password},
            "lmis": {
                "data_set": DEMO.data_set,
                "period_format": "YYYYMM",
                "item_field": "user_field_1",
                "data_element_id_scheme": "CODE",
                "round_off": True,
                "store_field": "Dhis2Code",
            },
        },
        environ={},
    )


def main() -> int:
    with (
        FakeDhis2.demo() as fake,
        Dhis2Lmis(config_for(fake.url), items=ITEMS, stores=[STORE]) as lmis,
    ):
        # The period comes from a date and [lmis] period_format; the org unit from the store.
        # lmis.data_value_set(period=..., org_unit="LmFacility1") works the same way.
        builder = lmis.data_value_set(period=date(2026, 11, 30), store=STORE)
        for item in ITEMS:
            if item.code in STOCK_ON_HAND:  # the data element comes from the item's reference
                builder.add_item(item, STOCK_ON_HAND[item.code])
        for skipped in builder.skipped:  # not included in the DHIS2 push, or no reference
            print(skipped)
        print(f"period {builder.period}, org unit {builder.org_unit}, {len(builder)} values")

        check = lmis.push_data_values(builder, dry_run=True)
        print(f"dry run: {check}")
        if not check.ok:
            return 1
        summary = lmis.push_data_values(builder)
        print(f"pushed:  {summary}")
        return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
