"""validate_setup names each misconfiguration; preflight stops a push that would lose values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.periods import period_for
from dhis2_lmis.errors import PermissionDeniedError
from dhis2_lmis.lmis.checks import Finding, PreflightError
from dhis2_lmis.lmis.models import Customer, Item, Store
from dhis2_lmis.testing import DataInputPeriod, FakeDhis2

ORDER, ORDER_STAGE = "OrderProg01", "OrderStage1"
RECEIPT, RECEIPT_STAGE = "ReceiptPrg1", "ReceiptStg1"
STR, STR_STAGE = "StrProgram1", "StrStage001"
ROOT, FACILITY, WAREHOUSE, OTHER = "RootUnit001", "FacilityA01", "Warehouse01", "FacilityB01"
AMOX, PARA, COMMENT = "DeAmox00001", "DePara00001", "DeComment01"
CONSIGNMENT = "DeConsign01"
SOH, RECEIVED, ITEM_CODE = "DeSoh000001", "DeRecv00001", "TeaItemCode"
DATA_SET = "DataSetSoh1"

ITEMS = (
    Item("I-AMOX", "Amoxicillin 250mg", universal_code="AMOX250"),
    Item("I-PARA", "Paracetamol 500mg", universal_code="PARA500"),
)
STORES = (Store("S-WH", "Central warehouse", custom_fields={"Dhis2Code": WAREHOUSE}),)
CUSTOMERS = (Customer("C-FAC-A", "Facility A", custom_fields={"Dhis2Code": FACILITY}),)


def seed(
    fake: FakeDhis2,
    *,
    receipt_type: str = "WITHOUT_REGISTRATION",
    period_type: str = "Monthly",
    soh_zero: bool = True,
    received_zero: bool = True,
    amox_zero: bool = True,
    str_attributes: Sequence[str] = (ITEM_CODE,),
    data_set_org_units: Sequence[str] = (FACILITY, WAREHOUSE),
    data_set: bool = True,
) -> None:
    """A correctly configured server, unless an option breaks one thing."""
    fake.add_org_unit(ROOT, "ROOT", "Country")
    for uid, code, name in (
        (FACILITY, "FAC_A", "Facility A"),
        (WAREHOUSE, "WH", "Central warehouse"),
        (OTHER, "FAC_B", "Facility B"),
    ):
        fake.add_org_unit(uid, code, name, parent=ROOT)
    fake.add_data_element(AMOX, "AMOX250", "Amoxicillin 250mg", zero_is_significant=amox_zero)
    fake.add_data_element(PARA, "PARA500", "Paracetamol 500mg", zero_is_significant=True)
    fake.add_data_element(COMMENT, "COMMENT", "Comment", value_type="TEXT")
    fake.add_data_element(CONSIGNMENT, "CONSIGNMENT_NO", "Consignment", value_type="TEXT")
    fake.add_data_element(SOH, "SOH", "Stock on hand", zero_is_significant=soh_zero)
    fake.add_data_element(RECEIVED, "RECEIVED", "Stock received", zero_is_significant=received_zero)
    fake.add_tracked_entity_attribute(ITEM_CODE, "ITEM_CODE", "Item code")
    fake.add_tracked_entity_attribute("TeaOther001", "OTHER", "Other attribute")
    fake.add_program(ORDER, "Order", stages={ORDER_STAGE: (AMOX, PARA, COMMENT)})
    fake.add_program(
        RECEIPT,
        "Receipt",
        program_type=receipt_type,  # type: ignore[arg-type]  # the tests vary it on purpose
        stages={RECEIPT_STAGE: (CONSIGNMENT,)},
    )
    fake.add_program(
        STR,
        "Real-Time Stock",
        program_type="WITH_REGISTRATION",
        stages={STR_STAGE: (SOH, RECEIVED)},
        attributes=tuple(str_attributes),
    )
    if data_set:
        fake.add_data_set(
            DATA_SET,
            "LMIS_SOH",
            "Stock on hand",
            period_type=period_type,
            data_elements=(AMOX, PARA),
            org_units=tuple(data_set_org_units),
        )


def settings(fake: FakeDhis2) -> dict[str, dict[str, object]]:
    """The configuration matching :func:`seed`, as a mutable mapping."""
    row = {"program_stage": STR_STAGE, "attribute": ITEM_CODE}
    return {
        "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
        "lmis": {
            "data_set": DATA_SET,
            "period_format": "YYYYMM",
            "data_element_id_scheme": "CODE",
            "name_field": "Dhis2Code",
        },
        "programs": {"order": ORDER, "receipt": RECEIPT, "str": STR},
        "receipt": {"consignment_data_element": CONSIGNMENT},
        "data_elements": {
            "stock_on_hand": {"data_element": SOH, **row},
            "received_quantity": {"data_element": RECEIVED, **row},
        },
    }


def lmis_for(
    fake: FakeDhis2,
    data: dict[str, dict[str, object]] | None = None,
    *,
    items: Sequence[Item] = ITEMS,
    stores: Sequence[Store] = STORES,
) -> Dhis2Lmis:
    return Dhis2Lmis(
        Dhis2Config.from_dict(data or settings(fake)),
        items=items,
        stores=stores,
        customers=CUSTOMERS,
    )


@pytest.fixture
def fake() -> Iterator[FakeDhis2]:
    with FakeDhis2(version="2.41") as server:
        yield server


def problems(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity != "info"]


def only(findings: Sequence[Finding], subject: str) -> Finding:
    (finding,) = [f for f in findings if f.subject == subject]
    return finding


def metadata_gets(fake: FakeDhis2) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET"]


# -- validate_setup ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.36", "2.40", "2.42"])
def test_correct_setup_has_no_errors_or_warnings(version: str) -> None:
    with FakeDhis2(version=version) as server:
        seed(server)
        findings = lmis_for(server).validate_setup()
    assert problems(findings) == []


def test_missing_program_is_an_error_naming_the_setting(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["programs"]["order"] = "NoSuchProg1"
    finding = only(lmis_for(fake, data).validate_setup(), "programs.order")
    assert finding.severity == "error"
    assert "NoSuchProg1" in finding.what and "does not exist" in finding.what


def test_event_program_configured_as_tracker_is_an_error(fake: FakeDhis2) -> None:
    seed(fake, receipt_type="WITH_REGISTRATION")
    finding = only(lmis_for(fake).validate_setup(), "programs.receipt")
    assert finding.severity == "error"
    assert "WITH_REGISTRATION" in finding.what and "event program" in finding.what


def test_str_program_that_is_an_event_program_is_an_error(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["programs"]["str"] = ORDER  # an event program
    findings = lmis_for(fake, data).validate_setup()
    finding = only(findings, "programs.str")
    assert "WITHOUT_REGISTRATION" in finding.what and "tracker program" in finding.what
    # its stages are still checked against the program actually configured
    assert only(findings, "data_elements.stock_on_hand.program_stage").severity == "error"


def test_stage_not_in_str_program_is_an_error(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["data_elements"]["stock_on_hand"] = {
        "data_element": SOH,
        "program_stage": ORDER_STAGE,
        "attribute": ITEM_CODE,
    }
    finding = only(
        lmis_for(fake, data).validate_setup(), "data_elements.stock_on_hand.program_stage"
    )
    assert finding.severity == "error"
    assert ORDER_STAGE in finding.what and STR_STAGE in finding.how_to_fix


def test_data_element_not_in_stage_is_an_error(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["data_elements"]["received_quantity"] = {
        "data_element": "AMOX250",
        "program_stage": STR_STAGE,
        "attribute": ITEM_CODE,
    }
    finding = only(
        lmis_for(fake, data).validate_setup(), "data_elements.received_quantity.data_element"
    )
    assert finding.severity == "error"
    assert "AMOX250" in finding.what and STR_STAGE in finding.what


def test_stage_data_elements_match_by_code_as_well_as_uid(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["data_elements"]["stock_on_hand"] = {
        "data_element": "SOH",
        "program_stage": STR_STAGE,
        "attribute": "ITEM_CODE",
    }
    data["receipt"] = {"consignment_data_element": "CONSIGNMENT_NO"}
    assert problems(lmis_for(fake, data).validate_setup()) == []


def test_attribute_not_in_str_program_is_an_error(fake: FakeDhis2) -> None:
    seed(fake, str_attributes=("TeaOther001",))
    findings = lmis_for(fake).validate_setup()
    finding = only(findings, "data_elements.stock_on_hand.attribute")
    assert finding.severity == "error"
    assert ITEM_CODE in finding.what and "Other attribute" in finding.what


def test_consignment_data_element_outside_receipt_program_is_an_error(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["receipt"] = {"consignment_data_element": COMMENT}
    finding = only(lmis_for(fake, data).validate_setup(), "receipt.consignment_data_element")
    assert finding.severity == "error" and COMMENT in finding.what


def test_order_line_layout_data_elements_must_be_in_the_order_program(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["order"] = {"item_data_element": "COMMENT", "quantity_data_element": "SOH"}
    findings = lmis_for(fake, data).validate_setup()
    assert [f.subject for f in problems(findings)] == ["order.quantity_data_element"]


def test_missing_data_set_is_an_error(fake: FakeDhis2) -> None:
    seed(fake, data_set=False)
    finding = only(lmis_for(fake).validate_setup(), "lmis.data_set")
    assert finding.severity == "error"
    assert DATA_SET in finding.what and "does not exist" in finding.what


def test_data_set_found_by_code(fake: FakeDhis2) -> None:
    seed(fake)
    data = settings(fake)
    data["lmis"]["data_set"] = "LMIS_SOH"
    assert problems(lmis_for(fake, data).validate_setup()) == []


def test_weekly_data_set_with_monthly_period_format_is_an_error(fake: FakeDhis2) -> None:
    seed(fake, period_type="Weekly")
    finding = only(lmis_for(fake).validate_setup(), "lmis.period_format")
    assert finding.severity == "error"
    assert "Weekly" in finding.what and "Monthly" in finding.what and "YYYYMM" in finding.what
    assert '"Weekly"' in finding.how_to_fix


def test_period_type_name_matching_the_data_set_is_accepted(fake: FakeDhis2) -> None:
    seed(fake, period_type="Weekly")
    data = settings(fake)
    data["lmis"]["period_format"] = "Weekly"
    assert problems(lmis_for(fake, data).validate_setup()) == []


@pytest.mark.parametrize("period_type", ["WeeklyFriday", "FinancialFeb", "FinancialAug"])
def test_dhis2_243_period_type_matching_the_data_set_is_accepted(period_type: str) -> None:
    with FakeDhis2(version="2.43") as fake:
        seed(fake, period_type=period_type)
        data = settings(fake)
        data["lmis"]["period_format"] = period_type
        assert problems(lmis_for(fake, data).validate_setup()) == []


def test_dhis2_243_period_format_on_an_older_server_names_both_versions() -> None:
    with FakeDhis2(version="2.42") as fake:
        seed(fake)
        data = settings(fake)
        data["lmis"]["period_format"] = "FinancialFeb"
        finding = only(lmis_for(fake, data).validate_setup(), "lmis.period_format")
    assert finding.severity == "error"
    assert "FinancialFeb periods, which DHIS2 has only from 2.43" in finding.what
    assert "this server runs DHIS2 2.42" in finding.what
    assert '"Monthly"' in finding.how_to_fix


def test_data_set_of_a_period_type_newer_than_243_names_the_server_version() -> None:
    with FakeDhis2(version="2.43") as fake:
        seed(fake, period_type="WeeklyTuesday")  # what a future DHIS2 might add
        finding = only(lmis_for(fake).validate_setup(), "lmis.data_set")
    assert finding.severity == "error"
    assert "unknown period type 'WeeklyTuesday' (this server runs DHIS2 2.43" in finding.what
    assert "DHIS2 2.36 to 2.43" in finding.what
    assert "upgrade dhis2-lmis" in finding.how_to_fix


def test_store_org_unit_not_assigned_to_data_set_is_a_warning(fake: FakeDhis2) -> None:
    seed(fake, data_set_org_units=(FACILITY,))
    finding = only(lmis_for(fake).validate_setup(), "store S-WH")
    assert finding.severity == "warning"
    assert WAREHOUSE in finding.what and "not assigned" in finding.what


def test_store_org_unit_unknown_to_the_server_is_a_warning(fake: FakeDhis2) -> None:
    seed(fake)
    stores = (Store("S-X", "Lost store", custom_fields={"Dhis2Code": "NoSuchUnit1"}),)
    finding = only(lmis_for(fake, stores=stores).validate_setup(), "store S-X")
    assert finding.severity == "warning"
    assert "NoSuchUnit1" in finding.what and "does not exist" in finding.what


def test_str_stock_data_element_without_zero_significance_is_a_warning(fake: FakeDhis2) -> None:
    seed(fake, soh_zero=False)
    finding = only(lmis_for(fake).validate_setup(), "data_elements.stock_on_hand.data_element")
    assert finding.severity == "warning"
    assert "stock-outs (zero) would be silently dropped" in finding.what


def test_received_quantity_may_drop_zeros_without_a_warning(fake: FakeDhis2) -> None:
    seed(fake, received_zero=False)
    subjects = {f.subject for f in lmis_for(fake).validate_setup()}
    assert "data_elements.received_quantity.data_element" not in subjects


def test_item_data_element_without_zero_significance_is_a_warning(fake: FakeDhis2) -> None:
    seed(fake, amox_zero=False)
    finding = only(lmis_for(fake).validate_setup(), "item I-AMOX")
    assert finding.severity == "warning"
    assert "AMOX250" in finding.what and "stock-outs (zero)" in finding.what


def test_item_reference_matching_no_data_element_is_a_warning(fake: FakeDhis2) -> None:
    seed(fake)
    items = (*ITEMS, Item("I-IBU", "Ibuprofen 400mg", universal_code="IBU400"))
    finding = only(lmis_for(fake, items=items).validate_setup(), "item I-IBU")
    assert finding.severity == "warning"
    assert "IBU400" in finding.what and "matches no data element" in finding.what


def test_store_with_empty_store_field_is_reported_as_skipped(fake: FakeDhis2) -> None:
    seed(fake)
    stores = (*STORES, Store("S-NEW", "New store", custom_fields={"Dhis2Code": " "}))
    finding = only(lmis_for(fake, stores=stores).validate_setup(), "store S-NEW")
    assert finding.severity == "info" and "skipped" in finding.what


def test_findings_are_sorted_errors_first(fake: FakeDhis2) -> None:
    seed(fake, soh_zero=False, period_type="Weekly")
    stores = (*STORES, Store("S-NEW", "New store"))
    findings = lmis_for(fake, stores=stores).validate_setup()
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert {"error", "warning", "info"} <= set(severities)


def test_finding_text_names_subject_problem_and_fix() -> None:
    finding = Finding("error", "program X does not exist", "fix programs.order", "programs.order")
    assert str(finding) == (
        "error [programs.order]: program X does not exist; fix: fix programs.order"
    )


def test_server_errors_raise_instead_of_becoming_findings(fake: FakeDhis2) -> None:
    seed(fake)
    fake.inject("GET", "/api/programs/*", status=403)
    with pytest.raises(PermissionDeniedError):
        lmis_for(fake).validate_setup()


def test_metadata_requests_are_few_and_do_not_grow_with_items(fake: FakeDhis2) -> None:
    seed(fake)
    fake.clear_requests()
    lmis_for(fake).validate_setup()
    few = metadata_gets(fake)
    assert len(few) == 4  # three programs and the data set

    fake.clear_requests()
    many = list(ITEMS)
    for n in range(300):  # known data elements outside the data set
        uid = f"DeMany{n:05d}"
        fake.add_data_element(uid, f"MANY{n:03d}", f"Item {n}")
        many.append(Item(f"I-{n}", f"Item {n}", universal_code=f"MANY{n:03d}"))
    many += [Item(f"I-GONE{n}", "Gone", universal_code=f"GONE{n:03d}") for n in range(50)]
    findings = lmis_for(fake, items=many).validate_setup()
    gets = metadata_gets(fake)
    assert len(gets) == 5  # the same four, plus one batched data element look-up
    assert gets.count("/api/dataElements") == 1
    assert len([f for f in findings if f.subject and f.subject.startswith("item I-GONE")]) == 50


# -- preflight --------------------------------------------------------------------------------


def posts(fake: FakeDhis2) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST"]


def test_preflight_reports_zero_on_non_significant_data_element(fake: FakeDhis2) -> None:
    seed(fake, amox_zero=False)
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("PARA500", 0)
    builder.add("AMOX250", 0)
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert finding.subject == "data element AMOX250"
    assert "row 1" in finding.what and "zeroIsSignificant" in finding.what
    assert posts(fake) == []


def test_preflight_without_a_data_set_looks_the_data_elements_up(fake: FakeDhis2) -> None:
    seed(fake, data_set=False)
    fake.add_data_element("DeExtra0001", "EXTRA", "Extra", zero_is_significant=False)
    data = settings(fake)
    del data["lmis"]["data_set"]
    lmis = lmis_for(fake, data)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("EXTRA", "0.0")
    builder.add("AMOX250", "2.5")
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    found = {f.subject: f.what for f in caught.value.findings}
    assert set(found) == {"data element EXTRA", "data element AMOX250"}
    assert found["data element EXTRA"].startswith("row 0: zero for data element Extra")
    assert found["data element AMOX250"].startswith("row 1 ('2.5'): not a whole number")
    assert metadata_gets(fake).count("/api/dataElements") == 1  # one batched look-up
    assert posts(fake) == []


def test_preflight_refuses_a_data_element_outside_the_data_set(fake: FakeDhis2) -> None:
    seed(fake)
    fake.add_data_element("DeExtra0001", "EXTRA", "Extra", zero_is_significant=False)
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("EXTRA", 3)
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert finding.subject == "data element EXTRA"
    assert "is not in data set Stock on hand (LMIS_SOH)" in finding.what
    assert posts(fake) == []


def test_preflight_reports_org_unit_not_assigned(fake: FakeDhis2) -> None:
    seed(fake)
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=OTHER)
    builder.add("AMOX250", 5)
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert finding.subject == f"org unit {OTHER}" and "not assigned" in finding.what
    assert posts(fake) == []


def test_preflight_reports_period_of_the_wrong_type(fake: FakeDhis2) -> None:
    seed(fake, period_type="Weekly")
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("AMOX250", 5)
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert finding.subject == "period 202611"
    assert "Monthly" in finding.what and "Weekly" in finding.what
    assert posts(fake) == []


def test_preflight_lists_every_problem_of_the_chunk(fake: FakeDhis2) -> None:
    seed(fake, amox_zero=False, period_type="Weekly")
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=OTHER)
    builder.add("AMOX250", 0)
    builder.add("PARA500", 3)
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    subjects = {f.subject for f in caught.value.findings}
    assert subjects == {"data element AMOX250", f"org unit {OTHER}", "period 202611"}
    assert "nothing was sent" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert posts(fake) == []


def test_problem_in_a_later_chunk_stops_the_whole_push(fake: FakeDhis2) -> None:
    seed(fake, amox_zero=False)
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("PARA500", 3)
    builder.add("AMOX250", 0)
    with pytest.raises(PreflightError):
        lmis.push_data_values(builder, preflight=True, chunk_size=1)
    assert posts(fake) == []


def test_clean_payload_passes_preflight_and_is_pushed(fake: FakeDhis2) -> None:
    seed(fake)
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("AMOX250", 0)  # zero is significant here
    builder.add("PARA500", 12)
    builder.add("AMOX250", 4, org_unit=WAREHOUSE)
    fake.clear_requests()
    summary = lmis.push_data_values(builder, preflight=True, chunk_size=1)
    assert summary.imported == 3
    assert posts(fake) == ["/api/dataValueSets"] * 3
    # the data set once per push; the server's time zone once per session
    assert metadata_gets(fake) == [f"/api/dataSets/{DATA_SET}", "/api/system/info"]


def test_without_preflight_nothing_is_looked_up(fake: FakeDhis2) -> None:
    seed(fake, period_type="Weekly")
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="2026W45", org_unit=FACILITY)
    builder.add("PARA500", 12)
    fake.clear_requests()
    lmis.push_data_values(builder)
    assert metadata_gets(fake) == []


# -- preflight: what DHIS2 itself checks -------------------------------------------------------

TYPED = {  # data element code -> value type, for the value-type checks
    "T_NUMBER": "NUMBER",
    "T_INTEGER": "INTEGER",
    "T_POSITIVE": "INTEGER_POSITIVE",
    "T_ZERO_OR_POSITIVE": "INTEGER_ZERO_OR_POSITIVE",
    "T_NEGATIVE": "INTEGER_NEGATIVE",
    "T_PERCENTAGE": "PERCENTAGE",
    "T_UNIT": "UNIT_INTERVAL",
    "T_BOOLEAN": "BOOLEAN",
    "T_TRUE_ONLY": "TRUE_ONLY",
    "T_TEXT": "TEXT",
    "T_LONG_TEXT": "LONG_TEXT",
}
TYPED_SET = "TypedDataS1"
# value type -> (values DHIS2 takes, values it refuses), from dhis2-core's ValidationUtils
CASES = {
    "NUMBER": (["0", "-3", "12.5", "0.25"], ["1e3", "+4", "007", "12.", ".5", "1,5", "NaN"]),
    "INTEGER": (["0", "-7", "2147483647"], ["12.6", "1.0", "+3", "-0", "2147483648", "x"]),
    "INTEGER_POSITIVE": (["1", "40"], ["0", "-1", "2.5"]),
    "INTEGER_ZERO_OR_POSITIVE": (["0", "9"], ["-1", "0.5", "01"]),
    "INTEGER_NEGATIVE": (["-1"], ["0", "1", "-1.5"]),
    "PERCENTAGE": (["0", "55", "100"], ["101", "-1", "12.5"]),
    "UNIT_INTERVAL": (["0", "0.5", "1"], ["1.5", "-0.1", "x"]),
    "BOOLEAN": (["true", "False", "t", "0", "TRUE"], ["yes please", "2"]),
    "TRUE_ONLY": (["true", "1", "T"], ["false", "0"]),
    "TEXT": (["anything at all"], []),
    "LONG_TEXT": (["x" * 5000], ["x" * 50_001]),
}


def seed_typed(fake: FakeDhis2) -> None:
    """One data element per value type, all in data set ``TYPED_SET``."""
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A")
    for n, (code, value_type) in enumerate(TYPED.items()):
        fake.add_data_element(
            f"DeTyped{n:04d}", code, code, value_type=value_type, zero_is_significant=True
        )
    fake.add_data_set(
        TYPED_SET,
        "TYPED",
        "Typed",
        data_elements=[f"DeTyped{n:04d}" for n in range(len(TYPED))],
        org_units=(FACILITY,),
    )


def typed_lmis(fake: FakeDhis2) -> Dhis2Lmis:
    data = settings(fake)
    data["lmis"]["data_set"] = TYPED_SET
    return lmis_for(fake, data)


def typed_payload(code: str, value: str) -> dict[str, object]:
    return {
        "dataSet": TYPED_SET,
        "period": "202611",
        "orgUnit": FACILITY,
        "dataValues": [{"dataElement": code, "value": value}],
    }


def test_preflight_and_the_fake_refuse_the_same_values_for_every_value_type(
    fake: FakeDhis2,
) -> None:
    """The preflight's rule and the fake's (written apart, both after dhis2-core) agree."""
    seed_typed(fake)
    lmis = typed_lmis(fake)
    code_of = {value_type: code for code, value_type in TYPED.items()}
    verdicts = []
    for value_type, (good, bad) in CASES.items():
        for value, refused in [(v, False) for v in good] + [(v, True) for v in bad]:
            payload = typed_payload(code_of[value_type], value)
            try:
                lmis.push_data_values(payload, preflight=True, dry_run=True)
                caught = False
            except PreflightError:
                caught = True
            summary = lmis.push_data_values(payload, dry_run=True)
            conflicts = {c.error_code for c in summary.conflicts}
            verdicts.append((value_type, value[:12], refused, caught, conflicts == {"E7619"}))
    assert [v for v in verdicts if not v[2] == v[3] == v[4]] == []


def test_integer_value_with_a_fraction_is_refused_by_the_fake_and_caught_by_preflight(
    fake: FakeDhis2,
) -> None:
    seed_typed(fake)
    lmis = typed_lmis(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("T_NUMBER", 12.6)
    builder.add("T_INTEGER", 12.6)  # lmis.round_off is off
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert finding.subject == "data element T_INTEGER"
    assert finding.what.startswith("row 1 ('12.6'): not a whole number")
    assert "value_not_integer" in finding.what and "round_off" in finding.how_to_fix
    assert posts(fake) == []
    summary = lmis.push_data_values(builder)  # without preflight DHIS2 refuses it itself
    (conflict,) = summary.conflicts
    assert conflict.error_code == "E7619" and "value_not_integer" in conflict.value
    assert conflict.indexes == (1,) and summary.imported == 1


def test_preflight_names_rows_by_their_place_in_the_whole_push(fake: FakeDhis2) -> None:
    seed_typed(fake)
    lmis = typed_lmis(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add_rows(
        [
            {"data_element": "T_INTEGER", "value": 1},
            {"data_element": "T_INTEGER", "value": 2, "period": "202610"},
            {"data_element": "T_POSITIVE", "value": 0},
        ]
    )
    with pytest.raises(PreflightError, match="row 2 \\('0'\\): not a whole number above 0"):
        lmis.push_data_values(builder, preflight=True, chunk_size=1)
    assert posts(fake) == []


def test_option_set_values_must_be_option_codes(fake: FakeDhis2) -> None:
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A")
    fake.add_option_set("OptStatus01", "STATUS", "Status", ["1", "2", "3"], value_type="INTEGER")
    fake.add_data_element("DeStatus001", "STATUS", "Status", option_set="OptStatus01")
    fake.add_data_set(
        DATA_SET, "LMIS", "LMIS", data_elements=("DeStatus001",), org_units=(FACILITY,)
    )
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add("STATUS", 2)
    builder.add("STATUS", 7, period="202610")
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert "row 1 ('7')" in finding.what and "INTEGER with an option set" in finding.what
    assert "1, 2, 3" in finding.how_to_fix
    summary = lmis.push_data_values(builder)
    assert [c.error_code for c in summary.conflicts] == ["E7621"] and summary.imported == 1


def seed_combos(fake: FakeDhis2) -> None:
    """AMOX250 counted by measure (category combo), data set by funding (attribute combo)."""
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A")
    fake.add_category_combo(
        "CcMeasure01", "MEASURE", "Measure", {"CocSoh00001": "SOH", "CocUsed0001": "USED"}
    )
    fake.add_category_combo(
        "CcFunding01", "FUNDING", "Funding", {"AocFundA001": "FUND_A", "AocFundB001": "FUND_B"}
    )
    fake.add_data_element(AMOX, "AMOX250", "Amoxicillin", category_combo="CcMeasure01")
    fake.add_data_element(PARA, "PARA500", "Paracetamol")
    fake.add_data_element("DeOutside01", "OUTSIDE", "Not in the data set")
    fake.add_data_set(
        DATA_SET,
        "LMIS",
        "LMIS",
        data_elements=(AMOX, PARA),
        org_units=(FACILITY,),
        category_combo="CcFunding01",
    )


def test_preflight_refuses_combos_and_data_elements_the_data_set_does_not_have(
    fake: FakeDhis2,
) -> None:
    seed_combos(fake)
    lmis = lmis_for(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    rows = [
        {"data_element": "AMOX250", "value": 5, "category_option_combo": "CocSoh00001",
         "attribute_option_combo": "AocFundA001"},  # fine
        {"data_element": "AMOX250", "value": 5, "category_option_combo": "CocUsed0001",
         "attribute_option_combo": "AocFundB001"},  # fine
        {"data_element": "AMOX250", "value": 5, "attribute_option_combo": "AocFundA001"},
        {"data_element": "PARA500", "value": 5, "attribute_option_combo": "CocSoh00001"},
        {"data_element": "OUTSIDE", "value": 5, "attribute_option_combo": "AocFundA001"},
        {"data_element": "PARA500", "value": 6},  # no attribute option combo: the default
    ]  # fmt: skip
    assert builder.add_rows(rows) == 6
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    found = {f.subject: f.what for f in caught.value.findings}
    assert set(found) == {
        "data element AMOX250",
        "attribute option combo CocSoh00001",
        "attribute option combo (none: the default)",
        "data element OUTSIDE",
    }
    assert found["data element AMOX250"].startswith("row 2: category option combo (none")
    assert "SOH, USED" in found["data element AMOX250"]
    assert found["attribute option combo CocSoh00001"].startswith("row 3:")
    assert "FUND_A, FUND_B" in found["attribute option combo CocSoh00001"]
    assert found["attribute option combo (none: the default)"].startswith("row 5:")
    assert found["data element OUTSIDE"].startswith("row 4: data element OUTSIDE is not in")
    assert posts(fake) == []


def clerk_lmis(fake: FakeDhis2) -> Dhis2Lmis:
    """A data entry user who may not edit expired periods."""
    fake.add_user("clerk", "Clerk123!", org_units=(FACILITY,), authorities=("F_DATAVALUE_ADD",))
    data = settings(fake)
    data["dhis2"].update(username="clerk", password="Clerk123!")
    return lmis_for(fake, data)


def seed_windows(fake: FakeDhis2, **windows: Any) -> None:
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A")
    fake.add_data_element(AMOX, "AMOX250", "Amoxicillin", zero_is_significant=True)
    fake.add_data_set(
        DATA_SET, "LMIS", "LMIS", data_elements=(AMOX,), org_units=(FACILITY,), **windows
    )


THIS_MONTH = period_for(dt.date.today(), "Monthly")
TWO_BACK, TWO_AHEAD = THIS_MONTH.previous().previous(), THIS_MONTH.next().next()
YESTERDAY = dt.datetime.now() - dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("windows", "period", "code", "words"),
    [
        ({"expiry_days": 10}, TWO_BACK.id, "E7640", "closed it on"),
        ({"open_future_periods": 1}, TWO_AHEAD.id, "E7641", f"after {THIS_MONTH.next().id}"),
        (
            {"input_periods": (DataInputPeriod(THIS_MONTH.id, closing=YESTERDAY),)},
            THIS_MONTH.id,
            "E7643",
            "outside the data set's data input periods",
        ),
    ],
)
def test_preflight_refuses_periods_closed_for_entry(
    fake: FakeDhis2, windows: dict[str, Any], period: str, code: str, words: str
) -> None:
    seed_windows(fake, **windows)
    lmis = clerk_lmis(fake)
    builder = lmis.data_value_set(period=period, org_unit=FACILITY)
    builder.add("AMOX250", 4)
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    (finding,) = caught.value.findings
    assert finding.subject == f"period {period}" and words in finding.what and code in finding.what
    assert posts(fake) == []
    summary = lmis.push_data_values(builder)  # and the fake refuses it the same way
    assert [c.error_code for c in summary.conflicts] == [code]


def test_open_periods_pass_and_users_who_may_edit_expired_ones_pass_expiry(
    fake: FakeDhis2,
) -> None:
    seed_windows(fake, expiry_days=10, open_future_periods=1)
    clerk_lmis(fake)
    builder = lmis_for(fake).data_value_set(period=THIS_MONTH.id, org_unit=FACILITY)
    builder.add("AMOX250", 4)
    builder.add("AMOX250", 5, period=THIS_MONTH.next().id)  # the one future period allowed
    builder.add("AMOX250", 6, period=TWO_BACK.id)  # expired, but not for the admin
    fake.clear_requests()
    assert lmis_for(fake).push_data_values(builder, preflight=True).imported == 3
    assert "/api/me" in metadata_gets(fake)  # asked only because a period had expired


def test_one_rule_for_bad_rows_good_ones_sent_without_preflight_none_with_it(
    fake: FakeDhis2,
) -> None:
    """docs/flows.md "Bad rows": the rule the CLI follows too."""
    seed_typed(fake)
    lmis = typed_lmis(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add_rows(
        [
            {"data_element": "T_INTEGER", "value": 3},
            {"data_element": "T_INTEGER", "value": "lots", "period": "202610"},
            {"data_element": "T_POSITIVE", "value": 0},
        ]
    )
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(builder, preflight=True)
    assert [f.subject for f in caught.value.findings] == ["row 1", "data element T_POSITIVE"]
    assert "[row 1]: value 'lots' for data element T_INTEGER" in str(caught.value)
    assert "row 2 ('0')" in str(caught.value)
    assert posts(fake) == []

    summary = lmis.push_data_values(builder)
    assert summary.imported == 1  # row 0; row 1 stays in builder.rejected
    assert [r.row for r in builder.rejected] == ["row 1"]
    (conflict,) = summary.conflicts  # row 2 is DHIS2's to refuse without a preflight
    assert conflict.error_code == "E7619" and conflict.indexes == (1,)


def test_a_push_whose_every_row_was_refused_still_reports_them_with_preflight(
    fake: FakeDhis2,
) -> None:
    seed_typed(fake)
    lmis = typed_lmis(fake)
    builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
    builder.add_rows([{"data_element": "T_INTEGER", "value": "n/a"}])
    with pytest.raises(PreflightError, match=r"\[row 0\]: value 'n/a'"):
        lmis.push_data_values(builder, preflight=True)
    assert posts(fake) == []


def test_a_ready_payloads_rows_are_named_by_their_index_in_data_values(fake: FakeDhis2) -> None:
    seed_typed(fake)
    lmis = typed_lmis(fake)
    payload = {
        "dataSet": TYPED_SET,
        "period": "202611",
        "orgUnit": FACILITY,
        "dataValues": [
            {"dataElement": "T_PERCENTAGE", "value": "50"},
            {"dataElement": "T_UNIT", "value": "0.5"},
            {"dataElement": "T_PERCENTAGE", "value": "150", "period": "202610"},
        ],
    }
    with pytest.raises(PreflightError) as caught:
        lmis.push_data_values(payload, preflight=True, chunk_size=2)
    (finding,) = caught.value.findings
    assert finding.what.startswith("row 2 ('150'): not a whole number from 0 to 100")
    assert posts(fake) == []
