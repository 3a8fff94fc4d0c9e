"""Fuzzing every DHIS2 response parser and the configuration loader with hypothesis.

Bodies are random JSON, and real recorded DHIS2 bodies (the cassettes and import fixtures
copied into tests/cassettes/, with their sources and licences there) mutated at random: a
value replaced by another JSON type, a key dropped, a list emptied or truncated, a string
cut. Whatever a server or proxy sends, a parser either answers or raises a ``Dhis2Error``
subclass (``ResponseFormatError`` in practice); the ones documented as "never raises" are
held to that. Random configuration dicts either load or raise one ``ConfigError`` listing
what is wrong.

The strategies, the mutations and the profile are tests/_fuzz.py's (``HYPOTHESIS_PROFILE=thorough``
for thousands of examples); the default profile keeps this module to a few seconds.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2 import convert, datavaluesets, imports
from dhis2_lmis.errors import ConfigError
from tests._fuzz import JSON, PROFILE, assert_only_dhis2_errors, mutated_bodies, real_bodies

# --- the corpus: real bodies -------------------------------------------------------------------

CORPUS = real_bodies()


def test_corpus_holds_real_bodies_of_every_kind() -> None:
    text = json.dumps(CORPUS)
    assert len(CORPUS) >= 30
    for key in ("importCount", "dataValues", "events", "instances", "version", "conflicts"):
        assert f'"{key}"' in text, key


BODIES = JSON | mutated_bodies(CORPUS) | st.sampled_from(CORPUS)

# --- the parsers -------------------------------------------------------------------------------


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


# Parsers documented "never raises": any exception is a bug.
NEVER_RAISE: dict[str, Callable[[Any], object]] = {
    "structure_event": convert.structure_event,
    "structure_event(tz)": lambda b: convert.structure_event(b, timezone.utc),
    "tracked_entity_refs": lambda b: list(convert.tracked_entity_refs(_items(b))),
    "job_location": imports.job_location,
    "data_value_rows": lambda b: list(datavaluesets.data_value_rows(b)),
    "org_unit_refs": lambda b: list(convert.org_unit_refs(b)),
}
# Parsers that may refuse a body, but only with a Dhis2Error.
DHIS2_ERRORS_ONLY: dict[str, Callable[[Any], object]] = {
    "current_username": convert.current_username,
    "job_completed": convert.job_completed,
    "data_value_set_header": datavaluesets.data_value_set_header,
    "parse_import_summary": imports.parse_import_summary,
    "parse_import_summary(dry_run)": lambda b: imports.parse_import_summary(
        b, payload_values=({"dataElement": "a", "value": "1"},), dry_run=True
    ),
    "parse_tracker_report": imports.parse_tracker_report,
    "parse_legacy_event_summaries": imports.parse_legacy_event_summaries,
}


@PROFILE
@given(body=BODIES)
def test_never_raising_parsers_never_raise(body: Any) -> None:
    for name, parse in NEVER_RAISE.items():
        assert_only_dhis2_errors(name, parse, copy.deepcopy(body), may_raise=False)


@PROFILE
@given(body=BODIES)
def test_other_parsers_raise_only_dhis2_errors(body: Any) -> None:
    for name, parse in DHIS2_ERRORS_ONLY.items():
        assert_only_dhis2_errors(name, parse, copy.deepcopy(body))


@pytest.mark.parametrize("name", sorted(NEVER_RAISE | DHIS2_ERRORS_ONLY))
def test_every_parser_reads_every_real_body(name: str) -> None:
    parse = (NEVER_RAISE | DHIS2_ERRORS_ONLY)[name]
    for body in CORPUS:
        assert_only_dhis2_errors(
            name, parse, copy.deepcopy(body), may_raise=name in DHIS2_ERRORS_ONLY
        )


# --- configuration ---------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "dhis2": {"url": "https://dhis2.example.org/dhis", "username": "lmis", "password": "pw-1"},
    "lmis": {"data_set": "DataSetSoh1", "data_element_id_scheme": "CODE", "round_off": True,
             "error_emails": ["ops@example.org"]},
    "programs": {"order": "OrderProg01", "receipt": "ReceiptPrg1", "str": "StrProgram1"},
    "data_elements": {"stock_on_hand": {"data_element": "DeSoh000001",
                                        "program_stage": "StrStage001",
                                        "attribute": "TeaItemCode"}},
    "receipt": {"consignment_data_element": "DeConsign01"},
    "smtp": {"host": "smtp.example.org", "port": 587, "starttls": True,
             "sender": "lmis@example.org"},
    "sync": {"page_size": 200, "interval": "12h", "overlap_minutes": 5},
}  # fmt: skip
KEYS = {
    "dhis2": ["enabled", "url", "auth", "username", "password", "password_env", "client_id",
              "client_secret", "client_auth", "token", "token_env", "timeout",
              "connect_timeout", "verify_tls", "tracker_api", "max_attempts"],
    "lmis": ["error_emails", "data_set", "period_format", "item_field",
             "data_element_id_scheme", "org_unit_id_scheme", "round_off", "name_field",
             "store_field"],
    "programs": ["order", "receipt", "str"],
    "order": ["item_data_element", "quantity_data_element"],
    "receipt": ["consignment_data_element"],
    "smtp": ["host", "port", "starttls", "ssl", "username", "password", "password_env",
             "sender", "timeout"],
    "sync": ["state", "overlap_minutes", "interval", "page_size"],
    "data_elements": ["stock_on_hand", "received_quantity"],
}  # fmt: skip
CONFIG_VALUES = JSON | st.sampled_from(
    ["basic", "body", "token", "header", "legacy", "tracker", "auto", "UID", "CODE", "YYYYMM",
     "1d", "90s", "-1", "0", "nan", "https://x.example/api", "not a url", "HOME"]
)  # fmt: skip


@st.composite
def config_dicts(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(VALID) if draw(st.booleans()) else {}
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        section = draw(st.sampled_from([*KEYS, "unknown_section"]))
        key = draw(st.sampled_from([*KEYS.get(section, []), "typo_key"]))
        table = data.get(section)
        if not isinstance(table, dict) or draw(st.integers(0, 9)) == 0:
            table = draw(CONFIG_VALUES) if draw(st.integers(0, 4)) == 0 else {}
            data[section] = table
        if isinstance(table, dict):
            if draw(st.integers(0, 3)) == 0:
                table.pop(key, None)
            else:
                table[key] = draw(CONFIG_VALUES)
    return data


@PROFILE
@given(data=config_dicts())
def test_config_loads_or_raises_one_config_error(data: Any) -> None:
    refused: ConfigError | None = None
    try:
        config = Dhis2Config.from_dict(data, environ={})
    except ConfigError as exc:
        refused = exc
    except Exception as exc:  # the property: exactly one ConfigError, nothing else
        raise AssertionError(f"from_dict raised {type(exc).__name__}: {exc!r}") from exc
    if refused is None:
        assert isinstance(config, Dhis2Config)
        return
    assert refused.problems, "a ConfigError lists what is wrong"
    assert str(refused).startswith("invalid configuration")
    assert not isinstance(refused.__cause__, ConfigError)  # one error, not one per problem


def test_valid_base_config_loads() -> None:
    assert Dhis2Config.from_dict(VALID, environ={}).programs.order == "OrderProg01"
