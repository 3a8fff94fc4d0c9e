"""Completed requisitions from the Order program, written to CSV on stdout.

Runs against the offline demo DHIS2 (no network, no configuration file):

    python examples/fetch_requisitions.py > requisitions.csv

Against your own server, replace the FakeDhis2 block with
``Dhis2Config.from_file("dhis2-lmis.toml")`` and load your items and customers with
``load_items("items.csv")`` / ``load_customers("customers.csv")``.
"""

from __future__ import annotations

import csv
import sys

from dhis2_lmis import Customer, Dhis2Config, Dhis2Lmis, Item
from dhis2_lmis.testing import DEMO, FakeDhis2

# mSupply items: the universal code holds the DHIS2 data element code (item_field).
ITEMS = (
    Item("AMOX250", "Amoxicillin 250mg capsules", universal_code="AMOX250"),
    Item("PARA500", "Paracetamol 500mg tablets", universal_code="PARA500"),
    Item("ORS200", "Oral rehydration salts sachet", universal_code="ORS200"),
    Item("ZINC20", "Zinc sulfate 20mg tablets", universal_code="ZINC20"),
    # COTRI480 is left out on purpose: its lines come back with item=None and a problem.
)

# mSupply customers (the requesting facilities): the "Dhis2Code" field holds the org unit.
CUSTOMERS = (
    Customer("FAC001", "Riverside Health Centre", {"Dhis2Code": DEMO.facilities[0]}),
    Customer("FAC002", "Hilltop Dispensary", {"Dhis2Code": DEMO.facilities[1]}),
    Customer("FAC003", "Lakeview Clinic", {"Dhis2Code": DEMO.facilities[2]}),
)

COLUMNS = (
    "event",
    "completed_at",
    "org_unit",
    "customer",
    "data_element",
    "item_code",
    "item_name",
    "quantity",
    "problems",
)


def config_for(url: str) -> Dhis2Config:
    """What a site would write in dhis2-lmis.toml, as a mapping."""
    return Dhis2Config.from_dict(
        {
            "dhis2": {"url": url, "username": DEMO.username, "password": DEMO.password},
            "lmis": {
                "item_field": "universal_code",
                "data_element_id_scheme": "CODE",
                "name_field": "Dhis2Code",
            },
            "programs": {"order": DEMO.order_program},
        },
        environ={},  # read nothing from this machine's environment
    )


def main() -> int:
    with FakeDhis2.demo() as fake:
        config = config_for(fake.url)
        with Dhis2Lmis(config, items=ITEMS, customers=CUSTOMERS) as lmis:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(COLUMNS)
            for req in lmis.fetch_completed_requisitions(since=None):
                problems = "; ".join(str(p) for p in req.problems)
                for line in req.lines:
                    writer.writerow(
                        (
                            req.event.uid,
                            req.completed_at.isoformat() if req.completed_at else "",
                            req.org_unit or "",
                            req.customer.code if req.customer else "",
                            line.data_element,
                            line.item.code if line.item else "",
                            line.item.name if line.item else "",
                            line.quantity if line.quantity is not None else "",
                            problems,
                        )
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
