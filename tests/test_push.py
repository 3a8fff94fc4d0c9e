"""Data value pushes through the facade: one normalised summary on every DHIS2 version."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dhis2_lmis import (
    Dhis2Config,
    Dhis2Lmis,
    ImportFailedError,
    InvalidValueError,
    Item,
    Store,
    UnknownReferenceError,
)
from dhis2_lmis.testing import FakeDhis2

DATA_SET, FACILITY, ROOT = "DataSetSoh1", "FacilityA01", "RootUnit001"
AMOX, PARA = "DeSohAmox01", "DeSohPara01"


def seed(fake: FakeDhis2) -> None:
    fake.add_org_unit(ROOT, "ROOT", "Country")
    fake.add_org_unit(FACILITY, "FAC_A", "Facility A", parent=ROOT)
    fake.add_data_element(AMOX, "SOH_AMOX250", "SOH Amoxicillin", zero_is_significant=True)
    fake.add_data_element(PARA, "SOH_PARA500", "SOH Paracetamol", zero_is_significant=True)
    fake.add_data_set(
        DATA_SET, "LMIS_SOH", "Stock on hand", data_elements=(AMOX, PARA), org_units=(FACILITY,)
    )


def lmis_for(fake: FakeDhis2, **lmis: object) -> Dhis2Lmis:
    config = Dhis2Config.from_dict(
        {
            "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
            "lmis": {"data_set": DATA_SET, "data_element_id_scheme": "UID", **lmis},
        }
    )
    return Dhis2Lmis(
        config, stores=(Store("S1", "Store 1", custom_fields={"Dhis2Code": FACILITY}),)
    )


def posted_payload(fake: FakeDhis2) -> dict[str, object]:
    (post,) = [r for r in fake.requests if r.method == "POST"]
    return json.loads(post.body)  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", ["2.36", "2.37", "2.40", "2.42", "2.43"])
def test_one_unknown_data_element_gives_two_imported_and_one_named_conflict(
    version: str,
) -> None:
    with FakeDhis2(version=version) as fake:
        seed(fake)
        lmis = lmis_for(fake)
        builder = lmis.data_value_set(period=dt.date(2026, 11, 15), org_unit=FACILITY)
        builder.add(AMOX, 340)
        builder.add("NoSuchDe001", 5)
        builder.add(PARA, 12)
        summary = lmis.push_data_values(builder)
        payload = posted_payload(fake)
    assert (summary.imported, summary.status) == (2, "WARNING")
    (conflict,) = summary.conflicts
    assert conflict.object == "NoSuchDe001"
    assert conflict.data_values[0]["dataElement"] == "NoSuchDe001"
    assert conflict.indexes == (1,)
    assert payload["dataSet"] == DATA_SET
    assert payload["period"] == "202611"


def test_values_land_once_however_often_they_are_pushed() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        lmis = lmis_for(fake)
        for _ in range(2):
            builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
            builder.add(AMOX, 340)
            lmis.push_data_values(builder)
        stored = [v for v in fake.data_values if v.data_element == AMOX]
    assert [v.value for v in stored] == ["340"]


def test_round_off_rounds_half_away_from_zero() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        lmis = lmis_for(fake, round_off=True)
        builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
        builder.add(AMOX, 12.5)
        builder.add(PARA, 2.4)
        lmis.push_data_values(builder)
        values = {v.data_element: v.value for v in fake.data_values}
    assert values == {AMOX: "13", PARA: "2"}


def test_org_unit_comes_from_the_store_dhis2code() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        lmis = lmis_for(fake)
        builder = lmis.data_value_set(
            period="202611", store=Store("S1", "Store 1", custom_fields={"Dhis2Code": FACILITY})
        )
        assert builder.org_unit == FACILITY
        with pytest.raises(UnknownReferenceError, match="S2"):
            lmis.data_value_set(period="202611", store=Store("S2", "Store 2"))


def test_codes_are_sent_with_the_code_id_scheme() -> None:
    with FakeDhis2(version="2.40") as fake:
        seed(fake)
        lmis = lmis_for(fake, data_element_id_scheme="CODE")
        builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
        builder.add("SOH_AMOX250", 7)
        summary = lmis.push_data_values(builder)
        query = next(r.query for r in fake.requests if r.method == "POST")
        stored = [(v.data_element, v.value) for v in fake.data_values]
    assert summary.imported == 1
    assert query["dataElementIdScheme"] == ["CODE"]
    assert stored == [(AMOX, "7")]


def test_dry_run_stores_nothing() -> None:
    with FakeDhis2(version="2.42") as fake:
        seed(fake)
        lmis = lmis_for(fake)
        builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
        builder.add(AMOX, 1)
        summary = lmis.push_data_values(builder, dry_run=True)
        assert fake.data_values == []
    assert summary.dry_run
    assert summary.imported == 1


@pytest.mark.parametrize("as_payload", [False, True])
def test_a_period_type_the_data_set_does_not_use_is_refused_not_stored(as_payload: bool) -> None:
    # DHIS2 stores a weekly value for a monthly data set unless asked for strictPeriods; a
    # builder and a ready payload naming the data set both ask for it
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        lmis = lmis_for(fake)
        builder = lmis.data_value_set(period="2026W10", org_unit=FACILITY)
        builder.add(AMOX, 340)
        summary = lmis.push_data_values(builder.build() if as_payload else builder)
        stored = list(fake.data_values)
    assert (summary.imported, summary.ignored) == (0, 1)
    assert [c.error_code for c in summary.conflicts] == ["E7632"]
    assert stored == []


def test_an_aborted_import_raises_with_the_summary() -> None:
    with FakeDhis2(version="2.40") as fake:
        seed(fake)
        lmis = lmis_for(fake, data_set="NoSuchSet01")
        builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
        builder.add(AMOX, 1)
        with pytest.raises(ImportFailedError) as raised:
            lmis.push_data_values(builder)
    assert raised.value.summary.status == "ERROR"


def test_chunks_merge_into_one_summary_with_offset_indexes() -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        lmis = lmis_for(fake)
        builder = lmis.data_value_set(period="202611", org_unit=FACILITY)
        builder.add(AMOX, 1)
        builder.add(PARA, 2)
        builder.add("NoSuchDe001", 3)
        summary = lmis.push_data_values(builder, chunk_size=2)
        posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 2
    assert summary.imported == 2
    assert summary.conflicts[0].indexes == (2,)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "twelve", None])
def test_bad_values_are_refused_naming_the_data_element(bad: object) -> None:
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        builder = lmis_for(fake).data_value_set(period="202611", org_unit=FACILITY)
        with pytest.raises(InvalidValueError, match=AMOX):
            builder.add(AMOX, bad)  # type: ignore[arg-type]


def test_add_item_names_the_data_element_by_item_reference_and_skips_the_excluded() -> None:
    items = (
        Item("I-AMOX", "Amoxicillin", universal_code="SOH_AMOX250"),
        Item("I-PARA", "Paracetamol", universal_code="SOH_PARA500", include_in_dhis2_push=False),
        Item("I-NONE", "No code"),
    )
    with FakeDhis2(version="2.41") as fake:
        seed(fake)
        config = Dhis2Config.from_dict(
            {
                "dhis2": {"url": fake.url, "username": "admin", "password": "district"},
                "lmis": {"data_set": DATA_SET, "data_element_id_scheme": "CODE"},
            }
        )
        lmis = Dhis2Lmis(config, items=items)
        stock = lmis.data_value_set(
            period="202611", store=Store("S1", "Store 1", custom_fields={"Dhis2Code": FACILITY})
        )
        added = [stock.add_item(item, value=340) for item in items]
        summary = lmis.push_data_values(stock)
        stored = [(v.data_element, v.value) for v in fake.data_values]
    assert added == [True, False, False]
    assert [s.item.code for s in stock.skipped] == ["I-PARA", "I-NONE"]
    assert "not included in DHIS2 data push" in str(stock.skipped[0])
    assert summary.imported == 1
    assert stored == [(AMOX, "340")]


@pytest.mark.parametrize(
    ("period_type", "day", "period_id"),
    [
        ("FinancialFeb", dt.date(2028, 1, 31), "2027Feb"),
        ("FinancialAug", dt.date(2027, 8, 1), "2027Aug"),
        ("WeeklyFriday", dt.date(2027, 1, 7), "2027FriW1"),
    ],
)
def test_dhis2_243_period_data_value_set_round_trips_through_the_fake(
    period_type: str, day: dt.date, period_id: str
) -> None:
    with FakeDhis2(version="2.43") as fake:
        seed(fake)
        fake.add_data_set(
            DATA_SET,
            "LMIS_SOH",
            "Stock",
            period_type=period_type,
            data_elements=(AMOX, PARA),
            org_units=(FACILITY,),
        )
        lmis = lmis_for(fake, period_format=period_type)
        builder = lmis.data_value_set(period=day, org_unit=FACILITY)
        builder.add(AMOX, 340)
        builder.add(PARA, 0)
        summary = lmis.push_data_values(builder, preflight=True)
        (report,) = lmis.fetch_stock_reports(day, org_unit=FACILITY)

    assert (summary.status, summary.imported) == ("SUCCESS", 2)
    assert posted_payload(fake)["period"] == period_id
    assert report.period == period_id
    assert sorted((line.data_element, str(line.value)) for line in report.lines) == [
        (AMOX, "340"),
        (PARA, "0"),
    ]


def test_dhis2_243_period_is_refused_by_an_older_server() -> None:
    with FakeDhis2(version="2.42") as fake:
        seed(fake)
        lmis = lmis_for(fake)
        builder = lmis.data_value_set(period="2027Feb", org_unit=FACILITY)
        builder.add(AMOX, 340)
        summary = lmis.push_data_values(builder)
        stored = list(fake.data_values)

    assert (summary.imported, summary.ignored) == (0, 1)
    assert [(c.object, c.value) for c in summary.conflicts] == [
        ("2027Feb", "Period not valid: `2027Feb`")
    ]
    assert stored == []
