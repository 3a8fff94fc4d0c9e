"""DHIS2's value types: which texts a data element of each type takes.

A data value import refuses a value that does not fit its data element's value type
(conflict ``E7619`` with a reason key such as ``value_not_integer``) or option set (``E7621``).
:func:`value_problem` is that rule, read from dhis2-core's ``ValidationUtils.valueIsValid`` and
``MathUtils`` for 2.36-2.43: numbers in plain notation without a plus sign or leading zeros,
integers that fit 32 bits, percentages that are whole numbers from 0 to 100, booleans in a few
spellings. The push preflight applies it to every row before sending.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal

__all__ = ["VALUE_PROBLEMS", "value_problem"]

_MAX_VALUE_LENGTH = 50_000
_MAX_NUMBER_LENGTH = 250
_INT_RANGE = (-(2**31), 2**31 - 1)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
_POSITIVE = re.compile(r"[1-9][0-9]*")
_ZERO_OR_POSITIVE = re.compile(r"0|[1-9][0-9]*")
_NEGATIVE = re.compile(r"-[1-9][0-9]*")
# Spellings every version from 2.36 turns into true/false before checking (2.43 adds y/yes/n/no).
_TRUE = frozenset({"true", "True", "TRUE", "t", "T", "1"})
_FALSE = frozenset({"false", "False", "FALSE", "f", "F", "0"})

VALUE_PROBLEMS: Mapping[str, str] = {
    "value_length_greater_than_max_length": f"longer than {_MAX_VALUE_LENGTH} characters",
    "value_not_numeric": "not a number in plain notation (like 12 or 12.5)",
    "value_not_unit_interval": "not a number from 0 to 1",
    "value_not_percentage": "not a whole number from 0 to 100",
    "value_not_integer": "not a whole number",
    "value_not_positive_integer": "not a whole number above 0",
    "value_not_zero_or_positive_integer": "not a whole number of 0 or more",
    "value_not_negative_integer": "not a whole number below 0",
    "value_not_bool": "not true or false",
    "value_not_true_only": "not true (the only value this data element takes)",
    "value_not_valid_option": "not one of the option codes of the data element's option set",
}
"""What each of DHIS2's value problem keys means, for messages."""


def _whole(text: str, pattern: re.Pattern[str]) -> bool:
    return bool(pattern.fullmatch(text)) and _INT_RANGE[0] <= int(text) <= _INT_RANGE[1]


def value_problem(
    value: str, value_type: str, options: Collection[str] | None = None
) -> str | None:
    """DHIS2's reason key (``"value_not_integer"``...) when it would refuse ``value``; else None.

    The one value check of the library: the push preflight applies it to every row, so a value
    DHIS2 would answer with an ``E7619`` conflict (or silently ignore) is caught before sending.
    Values are checked as sent, without trimming, as DHIS2 does. An empty value is not judged
    here (it means "delete"). Types outside NUMBER, INTEGER*, PERCENTAGE, UNIT_INTERVAL,
    BOOLEAN, TRUE_ONLY, TEXT and LONG_TEXT are only length-checked. With ``options`` (the codes
    of the data element's option set) the value must also be one of them. :data:`VALUE_PROBLEMS`
    words each key for people.

    Example:
        >>> value_problem("12.6", "INTEGER")
        'value_not_integer'
        >>> value_problem("12", "INTEGER") is None
        True
    """
    if not value:
        return None
    if len(value) > _MAX_VALUE_LENGTH:
        return "value_length_greater_than_max_length"
    problem = _type_problem(value, value_type)
    if problem is None and options is not None and value not in options:
        return "value_not_valid_option"
    return problem


# The whole-number types: the pattern a value must match and DHIS2's key when it does not.
_WHOLES = {
    "INTEGER": (_INTEGER, "value_not_integer"),
    "PERCENTAGE": (_INTEGER, "value_not_percentage"),
    "INTEGER_POSITIVE": (_POSITIVE, "value_not_positive_integer"),
    "INTEGER_ZERO_OR_POSITIVE": (_ZERO_OR_POSITIVE, "value_not_zero_or_positive_integer"),
    "INTEGER_NEGATIVE": (_NEGATIVE, "value_not_negative_integer"),
}
_BOOLEANS = _TRUE | _FALSE


def _type_problem(value: str, value_type: str) -> str | None:
    if value_type in ("NUMBER", "UNIT_INTERVAL"):
        if len(value) >= _MAX_NUMBER_LENGTH or not _NUMBER.fullmatch(value):
            return "value_not_numeric"
        if value_type == "UNIT_INTERVAL" and not 0 <= Decimal(value) <= 1:
            return "value_not_unit_interval"
        return None
    if value_type in _WHOLES:
        pattern, key = _WHOLES[value_type]
        if not _whole(value, pattern):
            return key
        if value_type == "PERCENTAGE" and not 0 <= int(value) <= 100:
            return key
        return None
    if (
        value_type == "BOOLEAN"
        and value not in _BOOLEANS
        and value.lower()
        not in (
            "true",
            "false",
        )
    ):
        return "value_not_bool"
    if value_type == "TRUE_ONLY" and value not in _TRUE and value.lower() != "true":
        return "value_not_true_only"
    return None
