"""Data set layouts: a store's stock pushed by item and measure and read back the same way.

The three shapes of docs/layouts.md, each against FakeDhis2 on 2.36-2.43, with item references
as codes and as UIDs:

* ``element``: the item is a data element, each measure a category option combo of it (DHIS2's
  MSR/RTS data sets);
* ``combo``: each measure is one data element, the item one of its category option combos
  (mSupply's "push only 1 data element");
* ``template``: one data element per item and measure, named by a code template such as
  ``SOH_{item}`` (mSupply's data set push).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2._uids import IdScheme
from dhis2_lmis.errors import ConfigError
from dhis2_lmis.lmis.checks import Finding, PreflightError
from dhis2_lmis.lmis.models import Item, StockReport, Store
from dhis2_lmis.run.cli import main
from dhis2_lmis.run.demo import DEMO_LAYOUTS, DemoLayout, run_demo
from dhis2_lmis.run.frames import to_dataframe
from dhis2_lmis.testing import DEMO, FakeDhis2

VERSIONS = ["2.36", "2.40", "2.41", "2.42", "2.43"]
Shape = Literal["element", "combo", "template"]
SHAPES: tuple[Shape, ...] = ("element", "combo", "template")

ROOT, FACILITY, OTHER_FACILITY = "RootUnit001", "FacilityA01", "FacilityB01"
DATA_SET = "DsLayout001"
PERIOD = "202611"
T0 = dt.datetime(2026, 12, 1, 8, 0, 0)
STORE = Store("S1", "Store 1", custom_fields={"Dhis2Code": FACILITY})

# shape "element": item data elements with a combo of measures
MEASURES, SOH, RECEIPT, ISSUED = "CcMeasures1", "CocSoh00001", "CocRecv0001", "CocIssued01"
AMOX_DE, PARA_DE = "DeAmox00001", "DePara00001"
# shape "combo": one data element per measure, items as combos
ITEMS_CC, AMOX_COC, PARA_COC, ORS_COC = "CcItems0001", "CocAmox0001", "CocPara0001", "CocOrs00001"
SOH_DE, RECEIVED_DE = "DeSoh000001", "DeRecv00001"
# the items' references: codes, or (UID scheme) UIDs of what the shape makes the item
CODES = {"AMOX": "AMOX250", "PARA": "PARA500", "ORS": "ORS1L"}
UIDS: dict[Shape, dict[str, str]] = {
    "element": {"AMOX": AMOX_DE, "PARA": PARA_DE, "ORS": "DeOrs000001"},
    "combo": {"AMOX": AMOX_COC, "PARA": PARA_COC, "ORS": ORS_COC},
    "template": {"AMOX": "ItAmox00001", "PARA": "ItPara00001", "ORS": "ItOrs000001"},
}
NAMES = {"AMOX": "Amoxicillin 250mg", "PARA": "Paracetamol 500mg", "ORS": "Oral rehydration"}

LAYOUTS: dict[Shape, dict[str, object]] = {
    "element": {
        "item_is": "data_element",
        # a name, a code: either resolves
        "measures": {"stock_on_hand": "Stock on hand", "received_quantity": "RECEIPT"},
    },
    "combo": {
        "item_is": "category_option_combo",
        "measures": {"stock_on_hand": "SOH", "received_quantity": "Stock received"},
    },
    "template": {
        "item_is": "data_element",
        "measures": {"stock_on_hand": "SOH_{item}", "received_quantity": "REC_{item}"},
    },
}


ZERO = {"zero_is_significant": True}  # stock-outs are news


def ref(scheme: IdScheme, shape: Shape, key: str) -> str:
    return CODES[key] if scheme == "CODE" else UIDS[shape][key]


def make_items(scheme: IdScheme, shape: Shape) -> dict[str, Item]:
    field = {"universal_code": None} if scheme == "CODE" else {}
    items = {}
    for key in ("AMOX", "PARA", "ORS"):
        reference = ref(scheme, shape, key)
        items[key] = Item(
            f"I-{key}",
            NAMES[key],
            universal_code=reference if field else None,
            custom_fields={} if field else {"user_field_1": reference},
            include_in_dhis2_push=key != "ORS",
        )
    return items


def seed(fake: FakeDhis2, shape: Shape, scheme: IdScheme) -> None:
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A", parent=ROOT)
    fake.add_org_unit(OTHER_FACILITY, "FAC_B", "Facility B", parent=ROOT)
    elements: list[str] = []
    if shape == "element":
        fake.add_category_combo(
            MEASURES,
            "MEASURES",
            "Stock measures",
            {SOH: None, RECEIPT: "RECEIPT", ISSUED: "ISSUED"},
            names={SOH: "Stock on hand", RECEIPT: "Stock receipt", ISSUED: "Stock issued"},
        )
        for key, uid in (("AMOX", AMOX_DE), ("PARA", PARA_DE)):
            fake.add_data_element(uid, CODES[key], NAMES[key], category_combo=MEASURES, **ZERO)
            elements.append(uid)
    elif shape == "combo":
        fake.add_category_combo(
            ITEMS_CC,
            "ITEMS",
            "Items",
            {AMOX_COC: CODES["AMOX"], PARA_COC: CODES["PARA"], ORS_COC: CODES["ORS"]},
            names={AMOX_COC: "Amoxicillin", PARA_COC: "Paracetamol", ORS_COC: "ORS"},
        )
        fake.add_data_element(SOH_DE, "SOH", "Stock on hand", category_combo=ITEMS_CC, **ZERO)
        fake.add_data_element(
            RECEIVED_DE, "RECEIVED", "Stock received", category_combo=ITEMS_CC, **ZERO
        )
        elements += [SOH_DE, RECEIVED_DE]
    else:
        for key in ("AMOX", "PARA"):
            for prefix, n in (("SOH", 1), ("REC", 2)):
                uid = f"De{prefix}{key}{n}".ljust(11, "0")
                fake.add_data_element(
                    uid, f"{prefix}_{ref(scheme, shape, key)}", f"{prefix} {NAMES[key]}", **ZERO
                )
                elements.append(uid)
    fake.add_data_set(
        DATA_SET,
        "LMIS",
        "Stock (monthly)",
        data_elements=elements,
        org_units=(FACILITY, OTHER_FACILITY),
    )


def config_for(
    fake: FakeDhis2, shape: Shape, scheme: IdScheme, layout: Mapping[str, object] | None = None
) -> Dhis2Config:
    return Dhis2Config.from_dict(
        {
            "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
            "lmis": {
                "data_set": DATA_SET,
                "data_element_id_scheme": scheme,
                "item_field": "universal_code" if scheme == "CODE" else "user_field_1",
                "round_off": True,
            },
            "data_set": dict(LAYOUTS[shape] if layout is None else layout),
        }
    )


def lmis_for(
    fake: FakeDhis2, shape: Shape, scheme: IdScheme, layout: Mapping[str, object] | None = None
) -> Dhis2Lmis:
    config = config_for(fake, shape, scheme, layout)
    return Dhis2Lmis(config, items=make_items(scheme, shape).values(), stores=(STORE,))


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fake_for(version: str, shape: Shape, scheme: IdScheme) -> FakeDhis2:
    fake = FakeDhis2(version=version, now=T0)
    seed(fake, shape, scheme)
    return fake


@pytest.fixture
def started() -> Iterator[list[FakeDhis2]]:
    fakes: list[FakeDhis2] = []
    yield fakes
    for fake in fakes:
        fake.stop()
        assert not fake.unanswered and not fake.errors


def start(started: list[FakeDhis2], version: str, shape: Shape, scheme: IdScheme) -> FakeDhis2:
    fake = fake_for(version, shape, scheme).start()
    started.append(fake)
    return fake


def lines_by_item_and_measure(reports: list[StockReport]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for report in reports:
        for line in report.lines:
            assert line.item is not None and line.measure is not None and line.value is not None
            out[(line.item.code, line.measure)] = line.value
    return out


# -- the round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["CODE", "UID"])
@pytest.mark.parametrize("shape", SHAPES)
def test_store_stock_pushed_by_measure_reads_back_with_same_item_measure_and_value(
    started: list[FakeDhis2], version: str, shape: Shape, scheme: IdScheme
) -> None:
    fake = start(started, version, shape, scheme)
    items = make_items(scheme, shape)
    with lmis_for(fake, shape, scheme) as lmis:
        builder = lmis.stock_value_set(
            PERIOD,
            store=STORE,
            values={
                items["AMOX"]: {"stock_on_hand": 610, "received_quantity": 500},
                items["PARA"]: {"stock_on_hand": 12.6, "received_quantity": "0"},
                items["ORS"]: {"stock_on_hand": 7},
            },
        )
        summary = lmis.push_data_values(builder)
        reports = list(lmis.fetch_stock_reports(PERIOD, org_unit=FACILITY))
    assert (summary.status, summary.imported, summary.conflicts) == ("SUCCESS", 4, ())
    assert [(s.item.code, s.measure) for s in builder.skipped] == [("I-ORS", "stock_on_hand")]
    assert [r.problems for r in reports] == [()]
    assert lines_by_item_and_measure(reports) == {
        ("I-AMOX", "stock_on_hand"): Decimal(610),
        ("I-AMOX", "received_quantity"): Decimal(500),
        ("I-PARA", "stock_on_hand"): Decimal(13),  # round_off
        ("I-PARA", "received_quantity"): Decimal(0),
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_stored_values_sit_in_the_data_element_and_combo_of_the_shape(
    started: list[FakeDhis2], shape: Shape
) -> None:
    fake = start(started, "2.41", shape, "CODE")
    items = make_items("CODE", shape)
    with lmis_for(fake, shape, "CODE") as lmis:
        builder = lmis.stock_value_set(
            PERIOD,
            store=STORE,
            values={items["AMOX"]: {"stock_on_hand": 1, "received_quantity": 2}},
        )
        lmis.push_data_values(builder)
    stored = {(v.data_element, v.category_option_combo): v.value for v in fake.data_values}
    expected = {
        "element": {(AMOX_DE, SOH): "1", (AMOX_DE, RECEIPT): "2"},
        "combo": {(SOH_DE, AMOX_COC): "1", (RECEIVED_DE, AMOX_COC): "2"},
        "template": {("DeSOHAMOX10", "HllvX50cXC0"): "1", ("DeRECAMOX20", "HllvX50cXC0"): "2"},
    }[shape]
    assert stored == expected


def test_layout_metadata_is_resolved_in_a_few_batched_requests_whatever_the_item_count(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "element", "CODE")
    for n in range(60):
        fake.add_data_element(f"DeMany{n:05d}", f"MANY{n}", f"Many {n}", category_combo=MEASURES)
    many = [Item(f"I-{n}", f"Many {n}", universal_code=f"MANY{n}") for n in range(60)]
    config = config_for(fake, "element", "CODE")
    with Dhis2Lmis(config, items=many, stores=(STORE,)) as lmis:
        fake.clear_requests()
        builder = lmis.stock_value_set(
            PERIOD, store=STORE, values={item: {"stock_on_hand": 5} for item in many}
        )
        builder.add_item(many[0], 6, measure="received_quantity")
    lookups = [r.path for r in fake.requests if r.method == "GET"]
    # measures by UID (none is UID-shaped: no request), code, then name; items in one request
    assert sorted(lookups) == [
        "/api/categoryOptionCombos",
        "/api/categoryOptionCombos",
        "/api/dataElements",
    ]
    assert len(builder) == 61


# -- reading what matches nothing ------------------------------------------------------------------


def test_value_under_a_combo_that_is_no_measure_stays_a_line_with_its_item_and_a_problem(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.42", "element", "CODE")
    fake.add_data_value(AMOX_DE, PERIOD, FACILITY, "9", category_option_combo=ISSUED)
    fake.add_data_value(AMOX_DE, PERIOD, FACILITY, "4", category_option_combo=SOH)
    with lmis_for(fake, "element", "CODE") as lmis:
        (report,) = lmis.fetch_stock_reports(PERIOD, org_unit=FACILITY)
    lines = {(line.measure, line.raw_value) for line in report.lines}
    assert lines == {(None, "9"), ("stock_on_hand", "4")}
    assert all(line.item is not None and line.item.code == "I-AMOX" for line in report.lines)
    assert [(p.kind, p.reference) for p in report.problems] == [("unknown_measure", "ISSUED")]


def test_value_under_a_combo_no_item_has_stays_a_line_with_its_measure_and_a_problem(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.40", "combo", "UID")
    fake.add_category_combo(
        "CcOther0001", "OTHER", "Other", {"CocStray001": "STRAY"}
    )  # a combo of another category combo: no item's
    fake.add_data_value(SOH_DE, PERIOD, FACILITY, "3", category_option_combo="CocStray001")
    with lmis_for(fake, "combo", "UID") as lmis:
        (report,) = lmis.fetch_stock_reports(PERIOD, org_unit=FACILITY)
    (line,) = report.lines
    assert (line.item, line.measure, line.value) == (None, "stock_on_hand", Decimal(3))
    assert [(p.kind, p.reference) for p in report.problems] == [("unknown_item", "CocStray001")]


def test_dataframe_shows_item_and_measure(started: list[FakeDhis2]) -> None:
    fake = start(started, "2.41", "template", "CODE")
    fake.add_data_value("DeSOHAMOX10", PERIOD, FACILITY, "15")
    with lmis_for(fake, "template", "CODE") as lmis:
        reports = list(lmis.fetch_stock_reports(PERIOD, org_unit=FACILITY))
    frame = to_dataframe(reports)
    assert frame[["item_code", "measure", "value"]].values.tolist() == [
        ["I-AMOX", "stock_on_hand", 15]
    ]


def test_cli_stock_report_rows_show_item_and_measure(
    started: list[FakeDhis2], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = start(started, "2.41", "combo", "CODE")
    fake.add_data_value(RECEIVED_DE, PERIOD, FACILITY, "8", category_option_combo=PARA_COC)
    config = tmp_path / "dhis2-lmis.toml"
    config.write_text(
        f'[dhis2]\nurl = "{fake.url}"\nusername = "admin"\npassword = "district"\n'
        f'[lmis]\ndata_set = "{DATA_SET}"\n'
        '[data_set]\nitem_is = "category_option_combo"\n'
        '[data_set.measures]\nstock_on_hand = "SOH"\nreceived_quantity = "Stock received"\n',
        encoding="utf-8",
    )
    items = tmp_path / "items.csv"
    items.write_text("code,name,universal_code\nI-PARA,Paracetamol,PARA500\n", encoding="utf-8")
    argv = ["--config", str(config), "--items", str(items), "pull", "stock-reports"]
    argv += ["--period", PERIOD, "--org-unit", FACILITY, "--format", "jsonl"]
    assert main(argv) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["item_code"], row["measure"], row["value"]) == ("I-PARA", "received_quantity", "8")


# -- pushing what the layout cannot place ----------------------------------------------------------


def test_measure_that_resolves_to_nothing_skips_its_values_with_the_reason(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "element", "CODE")
    layout = {"measures": {"stock_on_hand": "Stock on hand", "issued": "No such combo"}}
    items = make_items("CODE", "element")
    with lmis_for(fake, "element", "CODE", layout) as lmis:
        builder = lmis.stock_value_set(
            PERIOD, store=STORE, values={items["AMOX"]: {"stock_on_hand": 3, "issued": 1}}
        )
    assert len(builder) == 1
    (skipped,) = builder.skipped
    assert skipped.measure == "issued"
    assert "'No such combo' matches no category option combo" in skipped.reason


def test_unknown_measure_name_and_measure_without_layout_are_config_errors(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "element", "CODE")
    items = make_items("CODE", "element")
    with lmis_for(fake, "element", "CODE") as lmis:
        builder = lmis.data_value_set(PERIOD, store=STORE)
        with pytest.raises(ConfigError, match="unknown measure 'stock'"):
            builder.add_item(items["AMOX"], 1, measure="stock")
        with pytest.raises(ConfigError, match="name the measure"):
            builder.add_item(items["AMOX"], 1)
    plain = config_for(fake, "element", "CODE", {})
    with Dhis2Lmis(plain, items=items.values(), stores=(STORE,)) as lmis:
        with pytest.raises(ConfigError, match="needs a data set layout"):
            lmis.data_value_set(PERIOD, store=STORE).add_item(items["AMOX"], 1, measure="x")
        with pytest.raises(ConfigError, match="needs a data set layout"):
            lmis.stock_value_set(PERIOD, store=STORE, values={})


def test_value_not_a_number_is_rejected_and_the_rest_of_the_store_still_goes(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.43", "combo", "CODE")
    items = make_items("CODE", "combo")
    with lmis_for(fake, "combo", "CODE") as lmis:
        builder = lmis.stock_value_set(
            PERIOD,
            store=STORE,
            values={items["AMOX"]: {"stock_on_hand": "lots"}, items["PARA"]: {"stock_on_hand": 4}},
        )
        summary = lmis.push_data_values(builder)
    assert summary.imported == 1
    assert [r.row for r in builder.rejected] == ["I-AMOX stock_on_hand"]
    assert "not a number" in str(builder.rejected[0])
    assert builder.skipped == []


def test_a_value_that_cannot_be_sent_stops_a_push_with_a_preflight(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.43", "combo", "CODE")
    items = make_items("CODE", "combo")
    with lmis_for(fake, "combo", "CODE") as lmis:
        builder = lmis.stock_value_set(
            PERIOD,
            store=STORE,
            values={items["AMOX"]: {"stock_on_hand": "lots"}, items["PARA"]: {"stock_on_hand": 4}},
        )
        with pytest.raises(PreflightError, match="I-AMOX stock_on_hand"):
            lmis.push_data_values(builder, preflight=True)
    assert not [r for r in fake.requests if r.method == "POST"]


def test_foreign_combo_is_refused_by_the_server_not_stored_out_of_sight(
    started: list[FakeDhis2], version: str
) -> None:
    fake = start(started, version, "element", "CODE")
    fake.add_data_element("DeOrs000001", "ORS1L", "ORS")  # default category combo
    fake.add_data_set(
        DATA_SET,
        "LMIS",
        "Stock (monthly)",
        data_elements=(AMOX_DE, PARA_DE, "DeOrs000001"),
        org_units=(FACILITY,),
    )
    ors = Item("I-ORS", "ORS", universal_code="ORS1L")
    config = config_for(fake, "element", "CODE")
    with Dhis2Lmis(config, items=(ors,), stores=(STORE,)) as lmis:
        builder = lmis.stock_value_set(PERIOD, store=STORE, values={ors: {"stock_on_hand": 2}})
        summary = lmis.push_data_values(builder)
    assert summary.imported == 0 and len(summary.conflicts) == 1
    assert fake.data_values == []


# -- the setup check -------------------------------------------------------------------------------


def layout_findings(lmis: Dhis2Lmis) -> list[Finding]:
    return [f for f in lmis.validate_setup() if (f.subject or "").startswith("data_set.")]


@pytest.mark.parametrize("shape", SHAPES)
def test_sound_layout_has_no_layout_findings(started: list[FakeDhis2], shape: Shape) -> None:
    fake = start(started, "2.41", shape, "CODE")
    with lmis_for(fake, shape, "CODE") as lmis:
        assert layout_findings(lmis) == []
        assert not [f for f in lmis.validate_setup() if f.severity == "error"]


def test_check_names_a_measure_that_resolves_to_nothing(started: list[FakeDhis2]) -> None:
    fake = start(started, "2.41", "element", "CODE")
    layout = {"measures": {"stock_on_hand": "Stock on hand", "issued": "Stock isued"}}
    with lmis_for(fake, "element", "CODE", layout) as lmis:
        (finding,) = layout_findings(lmis)
    assert (finding.severity, finding.subject) == ("error", "data_set.measures.issued")
    assert "'Stock isued' matches no category option combo" in finding.what


def test_check_names_items_whose_data_element_lacks_the_measure_combo(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "element", "CODE")
    fake.add_data_element(PARA_DE, CODES["PARA"], NAMES["PARA"])  # now the default combo
    with lmis_for(fake, "element", "CODE") as lmis:
        findings = layout_findings(lmis)
    assert {f.subject for f in findings} == {
        "data_set.measures.stock_on_hand",
        "data_set.measures.received_quantity",
    }
    assert all("items I-PARA:" in f.what and f.severity == "error" for f in findings)
    assert "Stock on hand" in findings[0].what or "Stock on hand" in findings[1].what


def test_check_names_an_item_data_element_outside_the_data_set(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "element", "CODE")
    fake.add_data_set(DATA_SET, "LMIS", "Stock", data_elements=(AMOX_DE,), org_units=(FACILITY,))
    with lmis_for(fake, "element", "CODE") as lmis:
        (finding,) = layout_findings(lmis)
    assert finding.subject == "data_set.item_is"
    assert "items I-PARA are not in data set" in finding.what


def test_check_names_a_measure_data_element_outside_the_data_set(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "combo", "CODE")
    fake.add_data_set(DATA_SET, "LMIS", "Stock", data_elements=(SOH_DE,), org_units=(FACILITY,))
    with lmis_for(fake, "combo", "CODE") as lmis:
        (finding,) = layout_findings(lmis)
    assert finding.subject == "data_set.measures.received_quantity"
    assert "Stock received (RECEIVED), which is not in data set" in finding.what


def test_check_names_item_combos_outside_the_measure_data_element_category_combo(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "combo", "CODE")
    fake.add_category_combo("CcOther0001", "OTHER", "Other", {"CocAmox0002": "AMOX_OTHER"})
    items = make_items("CODE", "combo")
    items["AMOX"] = Item("I-AMOX", NAMES["AMOX"], universal_code="AMOX_OTHER")
    config = config_for(fake, "combo", "CODE")
    with Dhis2Lmis(config, items=items.values(), stores=(STORE,)) as lmis:
        findings = layout_findings(lmis)
    assert len(findings) == 2
    assert all("combos of items I-AMOX are not in the category combo" in f.what for f in findings)


def test_check_names_items_whose_combo_reference_names_nothing(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "combo", "CODE")
    items = [Item("I-X", "Unknown", universal_code="NO_SUCH_COMBO")]
    config = config_for(fake, "combo", "CODE")
    with Dhis2Lmis(config, items=items, stores=(STORE,)) as lmis:
        findings = layout_findings(lmis)
    assert {(f.severity, f.subject) for f in findings} == {("warning", "data_set.item_is")}
    assert "items I-X have a universal code that names no category option combo" in (
        findings[0].what
    )


def test_check_names_template_renderings_that_name_no_data_element(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "template", "CODE")
    layout = {"measures": {"stock_on_hand": "SOH_{item}", "issued": "ISS_{item}"}}
    with lmis_for(fake, "template", "CODE", layout) as lmis:
        (finding,) = layout_findings(lmis)
    assert finding.subject == "data_set.measures.issued"
    assert "for items I-AMOX (ISS_AMOX250), I-PARA (ISS_PARA500)" in finding.what


def test_check_names_template_data_elements_outside_the_data_set(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "template", "CODE")
    fake.add_data_set(
        DATA_SET,
        "LMIS",
        "Stock",
        data_elements=("DeSOHAMOX10", "DeRECAMOX20", "DeSOHPARA10"),
        org_units=(FACILITY,),
    )
    with lmis_for(fake, "template", "CODE") as lmis:
        (finding,) = layout_findings(lmis)
    assert finding.subject == "data_set.measures.received_quantity"
    assert "the data elements of items I-PARA are not in data set" in finding.what


def test_check_names_a_measure_data_element_without_code_under_the_code_scheme(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "combo", "CODE")
    fake.add_data_element(RECEIVED_DE, None, "Stock received", category_combo=ITEMS_CC, **ZERO)
    with lmis_for(fake, "combo", "CODE") as lmis:
        (finding,) = layout_findings(lmis)
    assert finding.subject == "data_set.measures.received_quantity"
    assert "has no code, but lmis.data_element_id_scheme is CODE" in finding.what


# -- the configuration -----------------------------------------------------------------------------


def test_config_problems_name_each_bad_measure() -> None:
    with pytest.raises(ConfigError) as caught:
        Dhis2Config.from_dict(
            {
                "dhis2": {"enabled": False},
                "data_set": {
                    "item_is": "category_option_combo",
                    "measures": {"a": "SOH_{item}", "b": "SOH_{code}", "c": " "},
                },
            }
        )
    keys = sorted(p.key for p in caught.value.problems)
    assert keys == ["data_set.measures.a", "data_set.measures.b", "data_set.measures.c"]


def test_config_without_data_set_section_keeps_one_data_element_per_item() -> None:
    config = Dhis2Config.from_dict({"dhis2": {"enabled": False}})
    assert not config.data_set.configured
    with Dhis2Lmis(config, items=[Item("I-A", "A", universal_code="A")]) as lmis:
        assert lmis.layout is None
        builder = lmis.data_value_set(PERIOD, org_unit=FACILITY)
        assert builder.add_item(Item("I-A", "A", universal_code="A"), 1)
        assert builder.rows == ({"dataElement": "A", "value": "1"},)
        assert builder.strict_category_option_combos is False


@pytest.mark.parametrize("shape", ["combo", "template"])
def test_check_warns_when_a_measure_data_element_drops_zeros(
    started: list[FakeDhis2], shape: Shape
) -> None:
    fake = start(started, "2.41", shape, "CODE")
    if shape == "combo":
        fake.add_data_element(SOH_DE, "SOH", "Stock on hand", category_combo=ITEMS_CC)
    else:
        fake.add_data_element("DeSOHAMOX10", "SOH_AMOX250", "SOH Amoxicillin")
    with lmis_for(fake, shape, "CODE") as lmis:
        (finding,) = layout_findings(lmis)
    assert (finding.severity, finding.subject) == ("warning", "data_set.measures.stock_on_hand")
    assert "zeroIsSignificant false" in finding.what


def test_item_not_given_to_the_client_is_still_placed_by_its_reference(
    started: list[FakeDhis2],
) -> None:
    fake = start(started, "2.41", "combo", "CODE")
    items = make_items("CODE", "combo")
    with Dhis2Lmis(
        config_for(fake, "combo", "CODE"), items=[items["AMOX"]], stores=[STORE]
    ) as lmis:
        builder = lmis.data_value_set(PERIOD, store=STORE)
        assert builder.add_item(items["PARA"], 5, measure="received_quantity")
        assert not builder.add_item(Item("I-NONE", "No reference"), 5, measure="stock_on_hand")
    assert builder.rows == (
        {"dataElement": "RECEIVED", "categoryOptionCombo": PARA_COC, "value": "5"},
    )
    assert [s.reason for s in builder.skipped] == ["its universal_code is empty"]


# -- the demo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", DEMO_LAYOUTS)
def test_demo_pushes_stock_by_measure_and_reads_the_same_back(
    version: str, layout: DemoLayout
) -> None:
    summary = run_demo(version=version, layout=layout, today=dt.date(2026, 11, 30))
    assert summary.ok and summary.period == PERIOD
    read = {
        (r.org_unit, line.item.code, line.measure): line.value
        for r in summary.stock_reports
        for line in r.lines
        if line.item is not None and line.measure is not None
    }
    expected_soh = {
        (lv.org_unit, lv.item_code, "stock_on_hand"): lv.stock_on_hand
        for lv in summary.stock_after
        if lv.org_unit in DEMO.facilities
    }
    received = {
        (o.receipt.org_unit, o.receipt.item_code, "received_quantity"): Decimal(o.receipt.quantity)
        for o in summary.stock_push
    }
    assert read == {**expected_soh, **received}
    # the demo world may hold that month's stock-on-hand report (SOH_<item>) already: those
    # values are updated, or ignored where unchanged
    pushed = summary.data_push
    assert pushed.imported + pushed.updated + pushed.ignored == len(read)


def test_demo_command_takes_a_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--layout", "category_option_combo"]) == 0
    out = capsys.readouterr().out
    assert "(layout category_option_combo)" in out
    assert "received_quantity" in out and "stock_on_hand" in out


def test_environment_overrides_reach_the_layout() -> None:
    config = Dhis2Config.from_env(
        {
            "DHIS2_ENABLED": "false",
            "DHIS2_LMIS_DATA_SET__ITEM_IS": "category_option_combo",
            "DHIS2_LMIS_DATA_SET__MEASURES__STOCK_ON_HAND": "LMIS_SOH",
        }
    )
    assert config.data_set.item_is == "category_option_combo"
    assert config.data_set.measures == {"stock_on_hand": "LMIS_SOH"}
