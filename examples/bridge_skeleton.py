"""A minimal mSupply-style bridge on SyncRunner, against the offline demo DHIS2.

    python examples/bridge_skeleton.py

The two handlers are where a real bridge talks to mSupply:

* ``on_requisition`` turns a completed Order-program event into a customer requisition (here: a
  dict in memory, keyed by the DHIS2 event UID, so a re-completed event replaces its old copy);
* ``on_receipt`` looks up what the acknowledged consignment held (here: a fake packing list)
  and returns the stock receipts the runner writes to the STR program; a consignment missing
  from the packing list raises, so the receipt is retried, never dropped (docs/sync.md).

The runner is run twice on the same state file: the first run hands every completed event over,
the second finds nothing new. Raising inside a handler marks that event failed; it is handed
over again on the next run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from dhis2_lmis import (
    ConsignmentReceipt,
    Customer,
    Dhis2Config,
    Dhis2Lmis,
    Item,
    PackingList,
    Requisition,
    SqliteStateStore,
    StockReceipt,
    SyncRunner,
)
from dhis2_lmis.testing import DEMO, FakeDhis2

ITEMS = tuple(
    Item(code, name, universal_code=code)
    for code, name in zip(DEMO.item_codes, DEMO.item_names, strict=True)
)
CUSTOMERS = tuple(
    Customer(code, f"Facility {code}", {"Dhis2Code": uid})
    for code, uid in zip(DEMO.facility_codes, DEMO.facilities, strict=True)
)

# What mSupply shipped under each consignment number (the QR code on the packing list).
PACKING_LIST = PackingList.from_mapping(
    {
        "CN-2024-1001": (("AMOX250", 100), ("ORS200", 40)),
        "CN-2024-1002": (("AMOX250", 120), ("PARA500", 60)),
        "CN-2024-1003": (("AMOX250", 140), ("ZINC20", 30)),
    }
)

# Stands in for mSupply's customer requisitions.
CUSTOMER_REQUISITIONS: dict[str, dict[str, object]] = {}


def config_for(url: str, state_file: Path) -> Dhis2Config:
    stock_row = {"program_stage": DEMO.str_stage, "attribute": DEMO.item_code_attribute}
    return Dhis2Config.from_dict(
        {
            "dhis2": {"url": url, "username": DEMO.username, "password": DEMO.password},
            "lmis": {"data_element_id_scheme": "CODE", "name_field": "Dhis2Code"},
            "programs": {
                "order": DEMO.order_program,
                "receipt": DEMO.receipt_program,
                "str": DEMO.str_program,
            },
            "data_elements": {
                "stock_on_hand": {"data_element": DEMO.stock_on_hand_data_element, **stock_row},
                "received_quantity": {
                    "data_element": DEMO.stock_received_data_element,
                    **stock_row,
                },
            },
            "receipt": {"consignment_data_element": DEMO.consignment_data_element},
            "sync": {"state": str(state_file)},
        },
        environ={},
    )


def on_requisition(requisition: Requisition, /, *, is_update: bool) -> None:
    """Create (or, for a re-completed event, replace) the customer requisition."""
    if requisition.customer is None:
        raise LookupError(f"org unit {requisition.org_unit} is no known customer")
    lines = [
        (line.item.code if line.item else line.data_element, line.quantity)
        for line in requisition.lines
    ]
    CUSTOMER_REQUISITIONS[requisition.event.uid] = {
        "customer": requisition.customer.code,
        "lines": lines,
        "problems": [str(p) for p in requisition.problems],
        "replaced": is_update,
    }


def on_receipt(receipt: ConsignmentReceipt, /, *, is_update: bool) -> tuple[StockReceipt, ...]:
    """The stock the facility received: one StockReceipt per packing-list line.

    Each receipt's reference is the consignment number: with the item and org unit it names
    the DHIS2 event, so a line is pushed once however often the receipt is handed over.
    Raises PackingListError when the consignment is not on the list: the event is failed and
    handed over again next run.
    """
    return PACKING_LIST.stock_receipts_for(receipt)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, FakeDhis2.demo() as fake:
        config = config_for(fake.url, Path(tmp) / "dhis2-lmis.sqlite")
        with (
            SqliteStateStore(config.sync.state) as state,
            Dhis2Lmis(config, items=ITEMS, customers=CUSTOMERS) as lmis,
        ):
            runner = SyncRunner(lmis, state, on_requisition=on_requisition, on_receipt=on_receipt)
            first = runner.run_once()
            print(f"first run:  {first}")
            print(f"customer requisitions created: {len(CUSTOMER_REQUISITIONS)}")
            second = runner.run_once()
            print(f"second run: {second}")
    nothing_new = second.handled == 0 and second.pushed == 0
    return 0 if first.failed == 0 and nothing_new else 1


if __name__ == "__main__":
    sys.exit(main())
