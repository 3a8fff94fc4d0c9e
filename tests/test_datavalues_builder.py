"""The data value set builder: value formatting, payload shape, duplicates and chunking."""

from __future__ import annotations

import doctest
from datetime import date
from decimal import Decimal

import pytest

from dhis2_lmis.dhis2 import valuetypes
from dhis2_lmis.errors import ConfigError, Dhis2Error
from dhis2_lmis.lmis import datavalues
from dhis2_lmis.lmis.datavalues import (
    DataValueSetBuilder,
    DuplicateValueError,
    InvalidValueError,
    format_value,
)

# --- format_value ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, "12"),
        (-7, "-7"),
        (0, "0"),
        (Decimal("12.50"), "12.5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("0E-8"), "0"),
        (3.0, "3"),
        (0.1, "0.1"),
        (-3.25, "-3.25"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"),
        ("1.5e2", "150"),
        (" 42 ", "42"),
        ("007", "7"),
        ("12.50", "12.5"),
        (".5", "0.5"),
        ("-0.0", "0"),
        (-0.0, "0"),
        (2**70, "1180591620717411303424"),
    ],
)
def test_format_value_writes_plain_decimal_without_trailing_zeros(
    value: int | float | Decimal | str, expected: str
) -> None:
    assert format_value(value, data_element="DE", round_off=False) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.6, "13"),
        (12.4, "12"),
        (2.5, "3"),
        (-2.5, "-3"),
        (0.5, "1"),
        (-0.4, "0"),
        (Decimal("2.50"), "3"),
        ("1.5", "2"),
        (7, "7"),
        (1e3, "1000"),
    ],
)
def test_round_off_rounds_half_away_from_zero(
    value: int | float | Decimal | str, expected: str
) -> None:
    assert format_value(value, data_element="DE", round_off=True) == expected


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        "NaN",
        "Infinity",
        "-inf",
        True,
        False,
        None,
        "abc",
        "",
        "  ",
        "1,5",
        "1_000",
        "0x10",
        "12 kg",
        [1],
        object(),
    ],
)
def test_unsendable_value_raises_invalid_value_error_naming_element_and_value(
    value: object,
) -> None:
    with pytest.raises(InvalidValueError) as info:
        format_value(value, data_element="StockOnHnd1")  # type: ignore[arg-type]  # bad on purpose
    text = str(info.value)
    assert "StockOnHnd1" in text
    assert repr(value) in text
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, Dhis2Error)
    assert info.value.data_element == "StockOnHnd1"


# --- the payload -----------------------------------------------------------------------------


def make_builder(**kwargs: object) -> DataValueSetBuilder:
    return DataValueSetBuilder("LmIsDsStck1", "202404", "DiszpKrYNg8", **kwargs)  # type: ignore[arg-type]  # test passthrough


def test_build_puts_shared_fields_on_top_and_omits_them_from_rows() -> None:
    builder = make_builder(attribute_option_combo="HllvX50cXC0", complete_date=date(2024, 5, 3))
    builder.add("StockOnHnd1", 340, category_option_combo="HllvX50cXC0", comment="counted")
    assert builder.build() == {
        "dataSet": "LmIsDsStck1",
        "completeDate": "2024-05-03",
        "period": "202404",
        "orgUnit": "DiszpKrYNg8",
        "attributeOptionCombo": "HllvX50cXC0",
        "dataValues": [
            {
                "dataElement": "StockOnHnd1",
                "categoryOptionCombo": "HllvX50cXC0",
                "value": "340",
                "comment": "counted",
            }
        ],
    }


def test_row_repeats_org_unit_and_period_only_when_they_differ() -> None:
    builder = make_builder()
    builder.add("StockOnHnd1", 1, org_unit="DiszpKrYNg8", period="202404")
    builder.add("StockOnHnd1", 2, org_unit="OtherOrgUn1")
    builder.add("StockOnHnd1", 3, period="202405")
    assert builder.rows == (
        {"dataElement": "StockOnHnd1", "value": "1"},
        {"dataElement": "StockOnHnd1", "orgUnit": "OtherOrgUn1", "value": "2"},
        {"dataElement": "StockOnHnd1", "period": "202405", "value": "3"},
    )


def test_bulk_builder_without_data_set_or_org_unit_sends_org_unit_per_row() -> None:
    builder = DataValueSetBuilder(None, "202404", None)
    builder.add("StockOnHnd1", 5, org_unit="DiszpKrYNg8")
    payload = builder.build()
    assert "dataSet" not in payload
    assert "orgUnit" not in payload
    assert payload["dataValues"] == [
        {"dataElement": "StockOnHnd1", "orgUnit": "DiszpKrYNg8", "value": "5"}
    ]


def test_value_without_any_org_unit_is_refused() -> None:
    builder = DataValueSetBuilder(None, "202404", None)
    with pytest.raises(InvalidValueError, match="no org unit"):
        builder.add("StockOnHnd1", 5)
    assert len(builder) == 0


def test_builder_applies_round_off_to_every_value() -> None:
    builder = make_builder(round_off=True)
    builder.add("StockOnHnd1", 2.5)
    assert builder.rows[0]["value"] == "3"


def test_invalid_value_is_not_added() -> None:
    builder = make_builder()
    with pytest.raises(InvalidValueError):
        builder.add("StockOnHnd1", float("nan"))
    assert len(builder) == 0
    builder.add("StockOnHnd1", 1)  # the failed add did not reserve the key
    assert len(builder) == 1


def test_len_counts_values_and_rows_keep_insertion_order() -> None:
    builder = make_builder()
    for n, element in enumerate(["C", "A", "B"]):
        builder.add(element, n)
    assert len(builder) == 3
    assert [r["dataElement"] for r in builder.rows] == ["C", "A", "B"]


def test_rows_and_build_return_copies() -> None:
    builder = make_builder()
    builder.add("StockOnHnd1", 1)
    builder.rows[0]["value"] = "999"
    payload = builder.build()
    payload["dataValues"][0]["value"] = "999"  # type: ignore[call-overload,index]  # JSON narrowing
    assert builder.rows[0]["value"] == "1"
    assert builder.build()["dataValues"] == [{"dataElement": "StockOnHnd1", "value": "1"}]


# --- duplicates ------------------------------------------------------------------------------


def test_same_key_twice_raises_duplicate_value_error_naming_the_key() -> None:
    builder = make_builder()
    builder.add("StockOnHnd1", 1, category_option_combo="Coc00000001")
    with pytest.raises(DuplicateValueError) as info:
        builder.add("StockOnHnd1", 2, category_option_combo="Coc00000001", period="202404")
    assert info.value.key == ("StockOnHnd1", "Coc00000001", None, "DiszpKrYNg8", "202404")
    for part in info.value.key:
        assert str(part or "(default)") in str(info.value)
    assert isinstance(info.value, InvalidValueError)


def test_default_org_unit_given_explicitly_is_still_a_duplicate() -> None:
    builder = make_builder()
    builder.add("StockOnHnd1", 1)
    with pytest.raises(DuplicateValueError, match=r"\(default\)"):
        builder.add("StockOnHnd1", 1, org_unit="DiszpKrYNg8")


@pytest.mark.parametrize("field", ["period", "org_unit", "attribute_option_combo"])
def test_the_builders_defaults_are_fixed_once_values_rely_on_them(field: str) -> None:
    """Values added without their own period are the builder's period's: changing it later
    would move them, so the defaults cannot be set after construction."""
    builder = make_builder()
    builder.add("StockOnHnd1", 1)
    with pytest.raises(AttributeError):
        setattr(builder, field, "202412")
    assert builder.build()["period"] == "202404"


@pytest.mark.parametrize(
    "other",
    [
        {"category_option_combo": "Coc00000002"},
        {"org_unit": "OtherOrgUn1"},
        {"period": "202405"},
    ],
)
def test_values_differing_in_one_key_part_are_not_duplicates(other: dict[str, str]) -> None:
    builder = make_builder()
    builder.add("StockOnHnd1", 1, category_option_combo="Coc00000001")
    builder.add("StockOnHnd1", 1, **{"category_option_combo": "Coc00000001", **other})
    assert len(builder) == 2


# --- chunks ----------------------------------------------------------------------------------


def test_iter_chunks_splits_values_and_repeats_the_header() -> None:
    builder = make_builder(attribute_option_combo="HllvX50cXC0")
    for n in range(5):
        builder.add(f"DataElemnt{n}", n)
    chunks = list(builder.iter_chunks(2))
    assert [len(c["dataValues"]) for c in chunks] == [2, 2, 1]  # type: ignore[arg-type]  # list
    header = {k: v for k, v in builder.build().items() if k != "dataValues"}
    for chunk in chunks:
        assert {k: v for k, v in chunk.items() if k != "dataValues"} == header
    rejoined = [row for c in chunks for row in c["dataValues"]]  # type: ignore[union-attr]  # list
    assert rejoined == builder.build()["dataValues"]


def test_iter_chunks_with_size_at_least_the_count_gives_one_payload() -> None:
    builder = make_builder()
    builder.add("StockOnHnd1", 1)
    assert list(builder.iter_chunks(10_000)) == [builder.build()]


def test_empty_builder_yields_no_chunks() -> None:
    assert list(make_builder().iter_chunks(10)) == []


@pytest.mark.parametrize("size", [0, -1])
def test_chunk_size_below_one_is_a_config_error(size: int) -> None:
    with pytest.raises(ConfigError, match="chunk size"):
        make_builder().iter_chunks(size)


def test_module_docstring_examples_run() -> None:
    result = doctest.testmod(datavalues, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


# --- value_problem ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("12.6", "INTEGER", "value_not_integer"),
        ("12", "INTEGER", None),
        ("-0", "INTEGER", "value_not_integer"),  # DHIS2's pattern has no negative zero
        ("2147483648", "INTEGER", "value_not_integer"),  # beyond 32 bits
        ("0", "INTEGER_POSITIVE", "value_not_positive_integer"),
        ("0", "INTEGER_ZERO_OR_POSITIVE", None),
        ("-4", "INTEGER_ZERO_OR_POSITIVE", "value_not_zero_or_positive_integer"),
        ("4", "INTEGER_NEGATIVE", "value_not_negative_integer"),
        ("100", "PERCENTAGE", None),
        ("99.5", "PERCENTAGE", "value_not_percentage"),  # whole numbers only
        ("1.0", "UNIT_INTERVAL", None),
        ("1.01", "UNIT_INTERVAL", "value_not_unit_interval"),
        ("1e3", "NUMBER", "value_not_numeric"),
        ("12.", "NUMBER", "value_not_numeric"),
        ("T", "BOOLEAN", None),
        ("maybe", "BOOLEAN", "value_not_bool"),
        ("false", "TRUE_ONLY", "value_not_true_only"),
        ("12.6", "TEXT", None),
        ("x" * 50_001, "LONG_TEXT", "value_length_greater_than_max_length"),
        ("whatever", "COORDINATE", None),  # types DHIS2 checks otherwise are left to it
        ("", "INTEGER", None),  # an empty value deletes, it is not judged
    ],
)
def test_value_problem_answers_with_dhis2s_reason_key(
    value: str, value_type: str, expected: str | None
) -> None:
    assert valuetypes.value_problem(value, value_type) == expected
    if expected is not None:
        assert expected in valuetypes.VALUE_PROBLEMS


def test_value_problem_checks_option_codes_after_the_value_type() -> None:
    codes = {"1", "2"}
    assert valuetypes.value_problem("2", "INTEGER", codes) is None
    assert valuetypes.value_problem("3", "INTEGER", codes) == "value_not_valid_option"
    assert valuetypes.value_problem("2.5", "INTEGER", codes) == "value_not_integer"


def test_every_formatted_number_is_a_dhis2_number() -> None:
    """What the builder sends for NUMBER data elements is what value_problem accepts."""
    for value in (0, -0.0, 12.5, Decimal("1E+3"), "007", 1e-7, Decimal("-2.50")):
        text = format_value(value, data_element="X")
        assert valuetypes.value_problem(text, "NUMBER") is None, text


# --- add_rows and row names --------------------------------------------------------------------


def test_add_rows_adds_the_good_rows_and_keeps_the_refused_ones_by_index() -> None:
    builder = make_builder()
    added = builder.add_rows(
        [
            {"data_element": "StockOnHnd1", "value": "12"},
            {"data_element": "StockOnHnd2", "value": "lots"},
            {"data_element": "", "value": "3"},
            {"data_element": "StockOnHnd1", "value": 4},  # a repeat of row 0
            {"data_element": "StockOnHnd3", "value": 0, "comment": "stock-out"},
        ]
    )
    assert added == 2 and len(builder) == 2
    assert [r.row for r in builder.rejected] == ["row 1", "row 2", "row 3"]
    assert "not a number" in str(builder.rejected[0])
    assert str(builder.rejected[1]) == (
        "row 2: no data_element for value '3': fill the data_element column"
    )
    assert isinstance(builder.rejected[2].error, DuplicateValueError)
    assert builder.row_names == ("row 0", "row 4")  # the index in the caller's list
    assert builder.rows[1] == {"dataElement": "StockOnHnd3", "value": "0", "comment": "stock-out"}


def test_add_rows_names_rows_as_the_caller_says() -> None:
    builder = make_builder()
    lines = [2, 3, 5]  # a CSV whose row 3 spans two lines
    builder.add_rows(
        [
            {"data_element": "A", "value": 1},
            {"data_element": "B"},
            {"data_element": "C", "value": 2},
        ],
        names=lambda i: f"soh.csv:{lines[i]}",
    )
    assert [str(r) for r in builder.rejected] == [
        "soh.csv:3: no value for data element B: fill the value column"
    ]
    assert builder.row_names == ("soh.csv:2", "soh.csv:5")
    chunks = list(builder.iter_named_chunks(1))
    assert [names for _, names in chunks] == [["soh.csv:2"], ["soh.csv:5"]]


def test_add_rows_says_which_cells_a_row_lacks_in_words_not_python() -> None:
    builder = make_builder()
    builder.add_rows(
        [{"data_element": "", "value": ""}, {"data_element": "A", "value": ""}, {"value": 7}],
        names=lambda i: f"values.csv:{i + 2}",
    )
    assert [str(r) for r in builder.rejected] == [
        "values.csv:2: no data_element and no value: fill both columns, or delete the row",
        "values.csv:3: no value for data element A: fill the value column",
        "values.csv:4: no data_element for value 7: fill the data_element column",
    ]
    assert "None" not in " ".join(map(str, builder.rejected))
    assert len(builder) == 0


def test_attribute_option_combo_is_part_of_a_values_identity() -> None:
    builder = make_builder(attribute_option_combo="FundA000001")
    builder.add("StockOnHnd1", 5)
    builder.add("StockOnHnd1", 6, attribute_option_combo="FundB000001")
    with pytest.raises(DuplicateValueError, match="FundA000001"):
        builder.add("StockOnHnd1", 7, attribute_option_combo="FundA000001")
    payload = builder.build()
    assert payload["attributeOptionCombo"] == "FundA000001"
    assert payload["dataValues"] == [
        {"dataElement": "StockOnHnd1", "value": "5"},
        {"dataElement": "StockOnHnd1", "attributeOptionCombo": "FundB000001", "value": "6"},
    ]
