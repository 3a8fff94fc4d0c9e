"""Dhis2Config: the TOML contract, validation that reports everything at once, and secrets."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import attrs
import pytest

from dhis2_lmis.config import (
    PERIOD_TYPE_NAMES,
    DataElementMapping,
    Dhis2Config,
    Secret,
    ServerSettings,
    parse_interval,
)
from dhis2_lmis.errors import ConfigError

PASSWORD = "pw-Zq81-never-print"
CLIENT_SECRET = "cs-7Hx2-never-print"
TOKEN = "d2pat_tok3n-never-print"
SMTP_PASSWORD = "smtp-9Kd4-never-print"
SECRETS = (PASSWORD, CLIENT_SECRET, TOKEN, SMTP_PASSWORD)

# The file format from the foundation issue (a public contract), with placeholders filled in.
ISSUE_EXAMPLE = f"""
[dhis2]
enabled = true
url = "https://dhis2.example.org:8443/dhis"
auth = "basic"
username = "msupply"
password = "{PASSWORD}"
client_id = "lmis"
client_secret = "{CLIENT_SECRET}"
token = "{TOKEN}"
timeout = 60
verify_tls = true

[lmis]
error_emails = "ops@example.org; pharmacy@example.org"
data_set = "QX4ZTUbOt3a"
period_format = "YYYYMM"
item_field = "universal_code"
data_element_id_scheme = "CODE"
round_off = false
name_field = "Dhis2Code"
store_field = "Dhis2Code"

[programs]
order = "OrdProg0001"
receipt = "RcptProg001"
str = "StrProg0001"

[data_elements.stock_on_hand]
active = true
data_element = "LMIS_SOH"
program_stage = "StrStage001"
attribute = "ItemCodeAt1"
[data_elements.received_quantity]
active = true
data_element = "LMIS_RECEIVED"
program_stage = "StrStage001"
attribute = "ItemCodeAt1"
"""


def basic(**server: object) -> dict[str, object]:
    """A minimal valid mapping, with [dhis2] keys overridden."""
    return {
        "dhis2": {"url": "https://dhis2.example.org", "username": "u", "password": "p", **server}
    }


def problem_keys(exc: pytest.ExceptionInfo[ConfigError]) -> set[str]:
    return {p.key for p in exc.value.problems}


def full_config() -> Dhis2Config:
    data = basic(password=PASSWORD, client_id="lmis", client_secret=CLIENT_SECRET, token=TOKEN)
    data["smtp"] = {
        "host": "127.0.0.1",
        "username": "m",
        "password": SMTP_PASSWORD,
        "sender": "a@b.org",
    }
    return Dhis2Config.from_dict(data, environ={})


def test_issue_example_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "dhis2-lmis.toml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8")

    config = Dhis2Config.from_file(path, environ={})

    assert config.dhis2.url == "https://dhis2.example.org:8443/dhis"
    assert config.dhis2.resolved_password() == PASSWORD
    assert config.lmis.error_emails == ("ops@example.org", "pharmacy@example.org")
    assert config.programs.str == "StrProg0001"
    assert config.data_elements.received_quantity == DataElementMapping(
        active=True,
        data_element="LMIS_RECEIVED",
        program_stage="StrStage001",
        attribute="ItemCodeAt1",
    )


@pytest.mark.parametrize("index", [0, 1])
def test_docs_examples_load(index: int, tmp_path: Path) -> None:
    docs = Path(__file__).parent.parent / "docs" / "configuration.md"
    blocks = re.findall(r"```toml\n(.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    environ = {"DHIS2_PASSWORD": PASSWORD, "DHIS2_CLIENT_SECRET": CLIENT_SECRET}
    environ["SMTP_PASSWORD"] = SMTP_PASSWORD

    path = tmp_path / "example.toml"
    path.write_text(blocks[index], encoding="utf-8")

    config = Dhis2Config.from_file(path, environ=environ)

    assert config.dhis2.resolved_password() == PASSWORD


def test_absent_sections_take_their_defaults() -> None:
    config = Dhis2Config.from_dict(basic(), environ={})

    assert config.dhis2.timeout == 60.0
    assert config.lmis.period_format == "YYYYMM"
    assert config.sync.state == "dhis2-lmis.sqlite"
    assert config.data_elements.stock_on_hand.active is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://dhis2.example.org", "https://dhis2.example.org"),
        ("https://dhis2.example.org/", "https://dhis2.example.org"),
        ("https://dhis2.example.org/api", "https://dhis2.example.org"),
        ("https://dhis2.example.org/api/", "https://dhis2.example.org"),
        ("https://x.org:8443/dhis", "https://x.org:8443/dhis"),
        ("https://x.org:8443/dhis/api/", "https://x.org:8443/dhis"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("  https://x.org/dhis//  ", "https://x.org/dhis"),
    ],
)
def test_url_is_normalised_to_the_instance_root(given: str, expected: str) -> None:
    config = Dhis2Config.from_dict(basic(url=given), environ={})

    assert config.dhis2.url == expected
    assert config.dhis2.api_url == expected + "/api"


@pytest.mark.parametrize(
    "url", ["ftp://x.org", "dhis2.example.org", "https://", "https://x.org?a=1", "https://:80"]
)
def test_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(basic(url=url), environ={})

    assert problem_keys(exc) == {"dhis2.url"}


def test_url_credentials_are_rejected_and_masked() -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(basic(url=f"https://admin:{PASSWORD}@x.org"), environ={})

    assert problem_keys(exc) == {"dhis2.url"}
    assert PASSWORD not in str(exc.value)


def test_every_problem_is_reported_at_once() -> None:
    data: dict[str, object] = {
        "dhis2": {"url": "ftp://x", "auth": "token", "timeout": 0, "tracker_api": "new"},
        "lmis": {"period_format": "YYYYQQ", "round_off": "maybe", "error_emails": "ops; a@b.org"},
        "programs": {"order": "short", "str": "1bcdefghijk"},
        "data_elements": {"stock_on_hand": {"active": True}},
        "sync": {"interval": "often", "page_size": 0},
    }

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) >= {
        "dhis2.url",
        "dhis2.token",
        "dhis2.timeout",
        "dhis2.tracker_api",
        "lmis.period_format",
        "lmis.round_off",
        "lmis.error_emails",
        "programs.order",
        "programs.str",
        "data_elements.stock_on_hand.data_element",
        "data_elements.stock_on_hand.program_stage",
        "sync.interval",
        "sync.page_size",
    }


def test_typo_key_is_rejected_naming_it() -> None:
    data = basic()
    data["lmis"] = {"data_sett": "QX4ZTUbOt3a"}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) == {"lmis.data_sett"}
    assert 'did you mean "data_set"' in str(exc.value)


def test_unknown_section_is_rejected_naming_it() -> None:
    data = basic()
    data["smpt"] = {"host": "mail"}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) == {"smpt"}


def test_wrong_type_is_a_problem_not_a_coercion() -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(basic(username=42, timeout="sixty"), environ={})

    assert problem_keys(exc) == {"dhis2.username", "dhis2.timeout"}


def test_misspelt_secret_key_value_is_not_shown() -> None:
    data = basic()
    data["dhis2"] = {"url": "https://x.org", "username": "u", "pasword": PASSWORD}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert "dhis2.pasword" in problem_keys(exc)
    assert PASSWORD not in str(exc.value)


def test_semicolon_separated_emails_are_split() -> None:
    data = basic()
    data["lmis"] = {"error_emails": "ops@example.org; pharmacy@example.org;"}
    data["smtp"] = {"host": "127.0.0.1", "sender": "lmis@example.org"}

    config = Dhis2Config.from_dict(data, environ={})

    assert config.lmis.error_emails == ("ops@example.org", "pharmacy@example.org")


def test_email_list_is_accepted() -> None:
    data = basic()
    data["lmis"] = {"error_emails": ["ops@example.org", "pharmacy@example.org"]}
    data["smtp"] = {"host": "127.0.0.1", "sender": "lmis@example.org"}

    config = Dhis2Config.from_dict(data, environ={})

    assert config.lmis.error_emails == ("ops@example.org", "pharmacy@example.org")


def test_comma_separated_emails_are_a_problem() -> None:
    data = basic()
    data["lmis"] = {"error_emails": "ops@example.org, pharmacy@example.org"}
    data["smtp"] = {"host": "127.0.0.1", "sender": "lmis@example.org"}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) == {"lmis.error_emails"}


def test_error_emails_without_smtp_host_load_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = basic()
    data["lmis"] = {"error_emails": "ops@example.org"}

    with caplog.at_level(logging.WARNING, logger="dhis2_lmis.config"):
        config = Dhis2Config.from_dict(data, environ={})

    assert config.lmis.error_emails == ("ops@example.org",)
    assert "smtp.host" in caplog.text


@pytest.mark.parametrize("fmt", ["YYYYMM", "YYYY-MM", "YYYYMMDD", "YYYY/MM/DD", *PERIOD_TYPE_NAMES])
def test_period_format_accepts_tokens_and_period_type_names(fmt: str) -> None:
    data = basic()
    data["lmis"] = {"period_format": fmt}

    assert Dhis2Config.from_dict(data, environ={}).lmis.period_format == fmt


def test_period_type_name_is_spelt_as_dhis2_does() -> None:
    data = basic()
    data["lmis"] = {"period_format": "quarterlynov"}

    assert Dhis2Config.from_dict(data, environ={}).lmis.period_format == "QuarterlyNov"


@pytest.mark.parametrize("fmt", ["MM", "YYYYYYYY", "YYYYDD", "YYYYQ", "Fortnightly", ""])
def test_period_format_rejects_anything_else(fmt: str) -> None:
    data = basic()
    data["lmis"] = {"period_format": fmt}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) == {"lmis.period_format"}


def test_basic_auth_needs_username_and_password() -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict({"dhis2": {"url": "https://x.org"}}, environ={})

    assert problem_keys(exc) == {"dhis2.username", "dhis2.password"}


def test_body_auth_with_client_needs_client_secret() -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(basic(auth="body", client_id="lmis"), environ={})

    assert problem_keys(exc) == {"dhis2.client_secret"}


def test_token_auth_needs_only_a_token() -> None:
    data = {"dhis2": {"url": "https://x.org", "auth": "token", "token": TOKEN}}

    config = Dhis2Config.from_dict(data, environ={})

    assert config.dhis2.resolved_token() == TOKEN
    assert config.dhis2.resolved_password() is None


def test_disabled_config_needs_no_url_or_credentials() -> None:
    config = Dhis2Config.from_dict({"dhis2": {"enabled": False}}, environ={})

    assert config.enabled is False
    assert config.dhis2.url is None


def test_disabled_config_still_checks_other_sections() -> None:
    data = {"dhis2": {"enabled": False}, "programs": {"order": "nope"}}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) == {"programs.order"}


def test_order_layout_is_inferred_from_the_data_elements() -> None:
    data = basic()
    data["order"] = {"item_data_element": "ITEM", "quantity_data_element": "QTY"}

    assert Dhis2Config.from_dict(data, environ={}).order.layout == "event_per_line"
    assert Dhis2Config.from_dict(basic(), environ={}).order.layout == "data_element_per_item"


def test_order_layout_needs_both_data_elements() -> None:
    data = basic()
    data["order"] = {"item_data_element": "ITEM"}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    assert problem_keys(exc) == {"order.quantity_data_element"}


def test_password_env_is_read_at_load_time() -> None:
    data = {"dhis2": {"url": "https://x.org", "username": "u", "password_env": "LMIS_PW"}}

    config = Dhis2Config.from_dict(data, environ={"LMIS_PW": PASSWORD})

    assert config.dhis2.resolved_password(environ={}) == PASSWORD


def test_missing_password_env_variable_is_named_without_a_value() -> None:
    data = {"dhis2": {"url": "https://x.org", "username": "u", "password_env": "LMIS_PW"}}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={"OTHER": PASSWORD})

    assert problem_keys(exc) == {"dhis2.password_env"}
    assert "LMIS_PW" in str(exc.value)
    assert PASSWORD not in str(exc.value)


def test_password_and_password_env_together_are_a_problem() -> None:
    data = basic(password_env="LMIS_PW")

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={"LMIS_PW": PASSWORD})

    assert problem_keys(exc) == {"dhis2.password_env"}


def test_client_secret_env_and_token_env_are_resolved() -> None:
    data = basic(auth="body", client_id="lmis", client_secret_env="CS", token_env="TK")

    config = Dhis2Config.from_dict(data, environ={"CS": CLIENT_SECRET, "TK": TOKEN})

    assert config.dhis2.resolved_client_secret() == CLIENT_SECRET
    assert config.dhis2.resolved_token() == TOKEN


def test_directly_built_password_env_resolves_on_demand() -> None:
    server = ServerSettings(url="https://x.org", username="u", password_env="LMIS_PW")

    config = Dhis2Config(dhis2=server)

    assert config.dhis2.resolved_password(environ={"LMIS_PW": PASSWORD}) == PASSWORD
    with pytest.raises(ConfigError, match="LMIS_PW"):
        config.dhis2.resolved_password(environ={})


@pytest.mark.parametrize("render", [repr, str])
def test_secrets_absent_from_repr_and_str(render: object) -> None:
    config = full_config()
    assert callable(render)

    text = render(config) + render(config.dhis2) + render(config.smtp)

    assert not [s for s in SECRETS if s in text]


def test_secrets_absent_from_to_dict() -> None:
    dumped = full_config().to_dict()

    assert not [s for s in SECRETS if s in repr(dumped)]
    server = dumped["dhis2"]
    assert isinstance(server, dict)
    assert (server["password"], server["client_secret"], server["token"]) == ("***",) * 3


def test_secrets_absent_from_config_error_text() -> None:
    data = basic(password=PASSWORD, token=TOKEN, client_secret=CLIENT_SECRET, timeout=-1)
    data["smtp"] = {"password": SMTP_PASSWORD, "port": 0}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    text = str(exc.value) + repr(exc.value) + repr(exc.value.problems)
    assert not [s for s in SECRETS if s in text]


def test_secret_of_the_wrong_type_is_masked_in_the_error() -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(basic(password=123456789), environ={})

    assert [(p.key, p.value) for p in exc.value.problems] == [("dhis2.password", "***")]


def test_secret_never_formats_itself() -> None:
    secret = Secret(PASSWORD)

    assert PASSWORD not in f"{secret} {secret!r} {secret:>30}"
    assert secret.reveal() == PASSWORD


def test_from_env_reads_shorthand_variables() -> None:
    environ = {
        "DHIS2_URL": "https://x.org/dhis/api/",
        "DHIS2_USERNAME": "msupply",
        "DHIS2_PASSWORD": PASSWORD,
        "DHIS2_AUTH": "body",
        "DHIS2_CLIENT_ID": "lmis",
        "DHIS2_CLIENT_SECRET": CLIENT_SECRET,
    }

    config = Dhis2Config.from_env(environ)

    assert config.dhis2.url == "https://x.org/dhis"
    assert config.dhis2.auth == "body"
    assert config.dhis2.resolved_password() == PASSWORD
    assert config.dhis2.resolved_client_secret() == CLIENT_SECRET


def test_from_env_token_alone_selects_token_auth() -> None:
    config = Dhis2Config.from_env({"DHIS2_URL": "https://x.org", "DHIS2_TOKEN": TOKEN})

    assert config.dhis2.auth == "token"


def test_from_env_disabled_needs_nothing_else() -> None:
    assert Dhis2Config.from_env({"DHIS2_ENABLED": "false"}).enabled is False


def test_from_env_section_overrides_are_typed() -> None:
    environ = {
        "DHIS2_URL": "https://x.org",
        "DHIS2_TOKEN": TOKEN,
        "DHIS2_LMIS_SYNC__PAGE_SIZE": "1000",
        "DHIS2_LMIS_LMIS__ROUND_OFF": "true",
        "DHIS2_LMIS_DHIS2__VERIFY_TLS": "false",
        "DHIS2_LMIS_DATA_ELEMENTS__STOCK_ON_HAND__ACTIVE": "false",
    }

    config = Dhis2Config.from_env(environ)

    assert config.sync.page_size == 1000
    assert config.lmis.round_off is True
    assert config.dhis2.verify_tls is False
    assert config.data_elements.stock_on_hand.active is False


def test_from_env_config_file_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "lmis.toml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    environ = {"DHIS2_LMIS_CONFIG": str(path), "DHIS2_LMIS_DHIS2__TIMEOUT": "5"}

    config = Dhis2Config.from_env(environ)

    assert config.dhis2.username == "msupply"
    assert config.dhis2.timeout == 5.0


def test_from_env_override_typo_is_rejected() -> None:
    environ = {"DHIS2_URL": "https://x.org", "DHIS2_TOKEN": TOKEN, "DHIS2_LMIS_SYNC__PAGESIZE": "9"}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_env(environ)

    assert problem_keys(exc) == {"sync.pagesize"}


def test_verify_tls_accepts_a_ca_bundle_path() -> None:
    config = Dhis2Config.from_dict(basic(verify_tls="/etc/ssl/ca.pem"), environ={})

    assert config.dhis2.verify_tls == "/etc/ssl/ca.pem"


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[dhis2\nurl = ", encoding="utf-8")

    with pytest.raises(ConfigError, match="not valid TOML"):
        Dhis2Config.from_file(path)


def test_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError, match=f"{re.escape(str(path))} does not exist"):
        Dhis2Config.from_file(path)


def test_directory_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{re.escape(str(tmp_path))} is a folder"):
        Dhis2Config.from_file(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"], ids=["empty", "blank", "bom-only"])
def test_empty_file_is_a_config_error_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.toml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError, match=f"{re.escape(str(path))} is empty: it needs .*dhis2.url"):
        Dhis2Config.from_file(path)


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "notepad.toml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8-sig")  # what Windows Notepad writes
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    config = Dhis2Config.from_file(path, environ={})

    assert config.dhis2.username == "msupply"
    assert config.programs.order == "OrdProg0001"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "latin-1"])
def test_other_encodings_say_save_as_utf8(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "saved-as.toml"
    path.write_text(ISSUE_EXAMPLE.replace("msupply", "m\u00e9dicaments"), encoding=encoding)

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_file(path, environ={})

    message = str(exc.value)
    assert str(path) in message
    assert "save the file as UTF-8" in message


def test_evolve_revalidates() -> None:
    config = Dhis2Config.from_dict(basic(), environ={})

    with pytest.raises(ConfigError) as exc:
        attrs.evolve(config, dhis2=attrs.evolve(config.dhis2, timeout=0.0))

    assert problem_keys(exc) == {"dhis2.timeout"}


def test_records_are_frozen() -> None:
    config = Dhis2Config.from_dict(basic(), environ={})

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.dhis2.url = "https://elsewhere.org"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1d", 86400), ("12h", 43200), ("1h30m", 5400), ("90s", 90), ("3600", 3600)],
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert parse_interval(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0", "0h", "1w", "h1"])
def test_parse_interval_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)


def test_plain_tables_are_accepted_by_the_constructor() -> None:
    server = {"url": "https://x.org/api/", "username": "u", "password": PASSWORD}
    programs = {"order": "OrdProg0001"}

    config = Dhis2Config(dhis2=server, programs=programs)  # type: ignore[arg-type]

    assert config.dhis2.url == "https://x.org"
    assert config.dhis2.resolved_password() == PASSWORD
    assert config.programs.order == "OrdProg0001"
    assert config == Dhis2Config.from_dict({"dhis2": server, "programs": programs}, environ={})


def test_constructor_validates_whatever_it_is_given() -> None:
    with pytest.raises(ConfigError) as exc:
        Dhis2Config(
            dhis2={"url": "ftp://x.org", "usernme": "u", "password": "p"},  # type: ignore[arg-type]
            sync=42,  # type: ignore[arg-type]
        )

    assert problem_keys(exc) == {"dhis2.usernme", "dhis2.url", "dhis2.username", "sync"}
    assert "must be a table ([sync])" in str(exc.value)


def test_config_error_lists_one_problem_per_line_key_first() -> None:
    data = basic(url="ftp://x.org", timeout="sixty", pasword="x")
    data["lmis"] = {"period_format": "Montly", "error_emails": "a@x.org; not-an-address"}

    with pytest.raises(ConfigError) as exc:
        Dhis2Config.from_dict(data, environ={})

    lines = str(exc.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert len(lines) == 1 + len(exc.value.problems) == 6
    assert [line.strip().split(":", 1)[0] for line in lines[1:]] == [
        p.key for p in exc.value.problems
    ]
    assert '  dhis2.url: must be an http:// or https:// address (got "ftp://x.org")' in lines
    assert '  dhis2.pasword: unknown key (typo?); did you mean "password"?' in lines
