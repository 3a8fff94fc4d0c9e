"""Chunks encoded straight from a builder's compact rows: the bytes DHIS2 receives.

A builder keeps finite numbers as given and formats them when their chunk is encoded; the
JSON that reaches the server must be what ``build()`` describes, row for row, a chunk at a
time, and a conflict must still point back at the caller's row.
"""

from __future__ import annotations

import json
from decimal import Decimal

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.lmis.datavalues import DataValueSetBuilder, format_value, push_data_value_set
from dhis2_lmis.testing import FakeDhis2

DATA_SET, ROOT, FACILITY, OTHER = "DataSetSoh1", "RootUnit001", "FacilityA01", "FacilityB01"
AMOX, PARA, ZINC = "DeSohAmox01", "DeSohPara01", "DeSohZinc01"


def seeded(fake: FakeDhis2) -> None:
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A", parent=ROOT)
    fake.add_org_unit(OTHER, "FAC_B", "Facility B", parent=ROOT)
    for uid, code in ((AMOX, "AMOX"), (PARA, "PARA"), (ZINC, "ZINC")):
        fake.add_data_element(uid, code, code, zero_is_significant=True)
    fake.add_data_set(DATA_SET, "SOH", "Stock", data_elements=(AMOX, PARA, ZINC),
                      org_units=(FACILITY, OTHER))  # fmt: skip


def test_posted_chunks_are_the_built_payload_a_chunk_at_a_time() -> None:
    builder = DataValueSetBuilder(DATA_SET, "202611", FACILITY, round_off=False)
    values: list[tuple[str, int | float | Decimal | str]] = [
        (AMOX, 0.1), (PARA, 2.0), (ZINC, 12_000_000_000_000_000.0), (AMOX, Decimal("2.50")),
        (PARA, " 7 "), (ZINC, -0.0),
    ]  # fmt: skip
    builder.add(*values[0], comment="counted twice, ünïcode kept")
    builder.add(*values[1], period="202610")
    builder.add(*values[2], org_unit=OTHER)
    builder.add(*values[3], org_unit=OTHER, period="202610")
    builder.add(*values[4], category_option_combo="CocOther001")
    builder.add(*values[5], org_unit=OTHER, period="202609")
    with FakeDhis2(version="2.41") as fake:
        seeded(fake)
        with Dhis2Session(fake.url, BasicAuth("admin", "district")) as session:
            summary = push_data_value_set(session, builder, chunk_size=4)
        posts = [json.loads(r.body) for r in fake.requests if r.method == "POST"]
    expected = builder.build()
    head = {k: v for k, v in expected.items() if k != "dataValues"}
    assert [len(p["dataValues"]) for p in posts] == [4, 2]
    assert all({k: v for k, v in p.items() if k != "dataValues"} == head for p in posts)
    assert [row for p in posts for row in p["dataValues"]] == expected["dataValues"]
    sent = [row["value"] for p in posts for row in p["dataValues"]]
    assert sent == [format_value(v, data_element=de) for de, v in values]
    assert sent[:3] == ["0.1", "2", "12000000000000000"] and sent[-1] == "0"
    assert posts[0]["dataValues"][0] == {
        "dataElement": AMOX, "value": "0.1", "comment": "counted twice, ünïcode kept",
    }  # fmt: skip
    assert summary.imported + summary.updated + summary.ignored == len(values)


def test_a_conflict_on_an_encoded_chunk_names_the_callers_row() -> None:
    builder = DataValueSetBuilder(DATA_SET, "202611", FACILITY)
    builder.add(AMOX, 1)
    builder.add(PARA, 2.0)
    builder.add("NoSuchDe001", 3.0, org_unit=OTHER)
    with FakeDhis2(version="2.41") as fake:
        seeded(fake)
        with Dhis2Session(fake.url, BasicAuth("admin", "district")) as session:
            summary = push_data_value_set(session, builder, chunk_size=2)
    (conflict,) = summary.conflicts
    assert conflict.indexes == (2,)
    assert conflict.data_values == (
        {"dataElement": "NoSuchDe001", "orgUnit": OTHER, "value": "3", "period": "202611"},
    )


def test_conflicts_name_rows_as_the_caller_named_them() -> None:
    builder = DataValueSetBuilder(DATA_SET, "202611", FACILITY)
    builder.add(AMOX, 1, row="values.csv:2")
    builder.add("NoSuchDe001", 2, row="values.csv:3")
    builder.add(PARA, 3)
    builder.add("NoSuchDe002", 4)
    with FakeDhis2(version="2.41") as fake:
        seeded(fake)
        with Dhis2Session(fake.url, BasicAuth("admin", "district")) as session:
            summary = push_data_value_set(session, builder, chunk_size=3)
    assert sorted(row for c in summary.conflicts for row in c.rows) == ["row 3", "values.csv:3"]
