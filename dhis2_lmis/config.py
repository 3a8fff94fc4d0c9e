"""Configuration: the mSupply "DHIS2 LMIS" preferences page as frozen, validated records.

A :class:`Dhis2Config` is loaded from a TOML file (:meth:`Dhis2Config.from_file`), a mapping
(:meth:`Dhis2Config.from_dict`) or the environment (:meth:`Dhis2Config.from_env`), or built
directly. Whichever way it is made, it is validated as a whole: every problem found goes into one
:class:`~dhis2_lmis.errors.ConfigError`, so a user fixes the file once instead of once per typo.

Why the shape:

- One cattrs ``Converter`` built here, with ``forbid_extra_keys=True``: a misspelt key is an error
  rather than a silently ignored setting (DHIS2 payloads are the opposite; see ``convert.py``).
- Simple-type hooks are strict: TOML ``timeout = "sixty"`` or ``url = 42`` is a problem, not a
  ``str(42)``; strings are accepted for numbers and booleans so environment overrides work.
- Secrets (passwords, the OAuth2 client secret, the personal access token) are :class:`Secret`
  values held in ``repr=False`` fields, so neither ``repr()`` nor ``str()`` of any record, nor any
  :class:`~dhis2_lmis.errors.ConfigProblem`, nor :meth:`Dhis2Config.to_dict` shows them.
- ``*_env`` settings name an environment variable; loaders read it at load time (a missing
  variable is a problem naming the variable, never a value).
"""

from __future__ import annotations

import builtins
import difflib
import hmac
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
from cattrs import ClassValidationError, Converter, ForbiddenExtraKeysError, transform_error
from cattrs.gen import make_dict_structure_fn, override

from dhis2_lmis.dhis2._json import JsonObject
from dhis2_lmis.dhis2._uids import IdScheme, is_uid
from dhis2_lmis.errors import ConfigError, ConfigProblem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    # tomli is installed only on 3.10, so type checkers running on 3.11+ cannot see it
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "PERIOD_TYPE_NAMES",
    "TEMPLATE_FIELD",
    "AuthMode",
    "ClientAuth",
    "DataElementMapping",
    "DataElementTable",
    "DataSetLayout",
    "Dhis2Config",
    "IdScheme",
    "ItemField",
    "ItemIs",
    "LmisSettings",
    "OrderLayout",
    "OrderSettings",
    "ProgramSettings",
    "ReceiptSettings",
    "Secret",
    "ServerSettings",
    "SmtpSettings",
    "SyncSettings",
    "TrackerApi",
    "parse_interval",
]

log = logging.getLogger(__name__)

AuthMode = Literal["basic", "body", "token"]
ClientAuth = Literal["header", "body"]
TrackerApi = Literal["auto", "tracker", "legacy"]
ItemField = Literal[
    "universal_code", "user_field_1", "user_field_2", "user_field_3", "user_field_6"
]
OrderLayout = Literal["data_element_per_item", "event_per_line"]
ItemIs = Literal["data_element", "category_option_combo"]

#: DHIS2 period type names accepted as ``period_format`` (DHIS2 2.36-2.43). Kept here (not
#: imported from ``periods.py``) so that loading a configuration never depends on the period
#: arithmetic; a test keeps the two lists equal.
PERIOD_TYPE_NAMES: tuple[str, ...] = (
    "Daily",
    "Weekly",
    "WeeklyWednesday",
    "WeeklyThursday",
    "WeeklyFriday",
    "WeeklySaturday",
    "WeeklySunday",
    "BiWeekly",
    "Monthly",
    "BiMonthly",
    "Quarterly",
    "QuarterlyNov",
    "SixMonthly",
    "SixMonthlyApril",
    "SixMonthlyNov",
    "Yearly",
    "FinancialFeb",
    "FinancialApril",
    "FinancialJuly",
    "FinancialAug",
    "FinancialSep",
    "FinancialOct",
    "FinancialNov",
)

_EMAIL_RE = re.compile(r'^[^@\s;,<>"]+@(localhost|[^@\s;,<>".]+(\.[^@\s;,<>".]+)+)$')
_PERIOD_TOKENS_RE = re.compile(r"^(YYYY|MM|DD)([-/._ ]?(YYYY|MM|DD))*$")
_INTERVAL_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_SECRET_KEYS = frozenset({"password", "client_secret", "token"})
_MASK = "***"
_UNSET = "<unset>"
_ENV_PREFIX = "DHIS2_LMIS_"
_UID_REASON = "not a DHIS2 UID (11 characters: a letter, then letters or digits)"

_T = TypeVar("_T")


@attrs.frozen(repr=False, eq=False)
class Secret:
    """A password, client secret or token that never prints itself.

    ``repr()``, ``str()`` and ``format()`` all give ``***``; only :meth:`reveal` returns the
    value, so leaking one takes a deliberate call that a reviewer can see.
    """

    _value: str = attrs.field(repr=False, validator=attrs.validators.instance_of(str))

    def reveal(self) -> str:
        """Return the secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return format(_MASK, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def _to_secret(value: str | Secret | None) -> Secret | None:
    """Let direct construction pass plain strings; loaders already hand over a Secret."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


def _normalise_url(value: str | None) -> str | None:
    """Strip whitespace, trailing slashes and a trailing ``/api``; keep any context path.

    Users paste the address they see in a browser (``.../dhis/``) or the API root
    (``.../dhis/api``); the session wants the instance root and adds ``/api/`` itself.
    """
    if value is None:
        return None
    url = value.strip().rstrip("/")
    if url.lower().endswith("/api"):
        url = url[: -len("/api")].rstrip("/")
    return url


def _split_emails(value: str | Iterable[str]) -> tuple[str, ...]:
    """Accept mSupply's ``"a@x; b@y"`` string or a list, giving trimmed, non-empty addresses."""
    parts = value.split(";") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p.strip())


def _canonical_period_format(value: str) -> str:
    """Spell a period type name as DHIS2 does (``monthly`` -> ``Monthly``), like ``periods.py``."""
    for name in PERIOD_TYPE_NAMES:
        if name.lower() == value.strip().lower():
            return name
    return value


def parse_interval(text: str) -> timedelta:
    """Parse an interval such as ``"1d"``, ``"12h"``, ``"1h30m"``, ``"90s"`` or ``"3600"``.

    A bare number counts seconds. Used by ``[sync] interval`` and ``SyncRunner.run_forever``.

    Raises:
        ValueError: the text is not an interval, or is zero.
    """
    stripped = text.strip().lower()
    if stripped.isdigit():
        seconds = int(stripped)
    else:
        match = _INTERVAL_RE.match(stripped)
        if not stripped or match is None:
            raise ValueError(f"not an interval: {text!r} (examples: 1d, 12h, 1h30m, 90s)")
        days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise ValueError(f"interval must be longer than zero: {text!r}")
    return timedelta(seconds=seconds)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@attrs.frozen
class ServerSettings:
    """``[dhis2]``: where the server is and how to log in.

    mSupply: "Use DHIS2", URL, Username, Password, Client, Secret, "Basic authentication".
    Secrets are resolved at load time: after :meth:`Dhis2Config.from_file` and friends,
    ``password`` holds the value of ``password_env`` when that was given. Use
    :meth:`resolved_password`, :meth:`resolved_client_secret` and :meth:`resolved_token` to get
    plain strings.
    """

    enabled: bool = True
    url: str | None = attrs.field(default=None, converter=_normalise_url)
    auth: AuthMode = "basic"
    username: str | None = None
    password: Secret | None = attrs.field(default=None, repr=False, converter=_to_secret)
    password_env: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = attrs.field(default=None, repr=False, converter=_to_secret)
    client_secret_env: str | None = None
    client_auth: ClientAuth = "header"
    token: Secret | None = attrs.field(default=None, repr=False, converter=_to_secret)
    token_env: str | None = None
    timeout: float = 60.0
    connect_timeout: float = 10.0
    verify_tls: bool | str = True
    tracker_api: TrackerApi = "auto"
    max_attempts: int = 4

    @property
    def api_url(self) -> str | None:
        """The API root, ``url + "/api"``, or None when no URL is set."""
        return f"{self.url}/api" if self.url else None

    def resolved_password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Return the password: ``password``, else the variable ``password_env`` names.

        Raises:
            ConfigError: ``password_env`` names a variable that is not set.
        """
        return _resolve(self.password, self.password_env, "dhis2.password_env", environ)

    def resolved_client_secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Return the OAuth2 client secret: ``client_secret``, else ``client_secret_env``.

        Raises:
            ConfigError: ``client_secret_env`` names a variable that is not set.
        """
        return _resolve(
            self.client_secret, self.client_secret_env, "dhis2.client_secret_env", environ
        )

    def resolved_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Return the personal access token: ``token``, else ``token_env``.

        Raises:
            ConfigError: ``token_env`` names a variable that is not set.
        """
        return _resolve(self.token, self.token_env, "dhis2.token_env", environ)


@attrs.frozen
class LmisSettings:
    """``[lmis]``: how mSupply data maps onto DHIS2 (the rest of the preferences page)."""

    error_emails: tuple[str, ...] = attrs.field(default=(), converter=_split_emails)
    data_set: str | None = None
    period_format: str = attrs.field(default="YYYYMM", converter=_canonical_period_format)
    item_field: ItemField = "universal_code"
    data_element_id_scheme: IdScheme = "CODE"
    org_unit_id_scheme: IdScheme = "UID"
    round_off: bool = False
    name_field: str | None = None
    store_field: str = "Dhis2Code"

    @property
    def period_is_type_name(self) -> bool:
        """True when ``period_format`` names a DHIS2 period type rather than YYYY/MM/DD tokens."""
        return self.period_format in PERIOD_TYPE_NAMES


@attrs.frozen
class ProgramSettings:
    """``[programs]``: the Order, Receipt and STR (Real-Time Stock) tracker program UIDs."""

    # builtins.str: the field named ``str`` shadows the type inside this class body
    order: builtins.str | None = None
    receipt: builtins.str | None = None
    str: builtins.str | None = None


@attrs.frozen
class DataElementMapping:
    """One row of the data element table: where a stock figure lives in the STR program."""

    active: bool = True
    data_element: str | None = None
    program_stage: str | None = None
    attribute: str | None = None


def _inactive_row() -> DataElementMapping:
    """A row missing from the file is switched off, so an absent table is not an error."""
    return DataElementMapping(active=False)


@attrs.frozen
class DataElementTable:
    """``[data_elements]``: the data element table of the preferences page."""

    stock_on_hand: DataElementMapping = attrs.field(factory=_inactive_row)
    received_quantity: DataElementMapping = attrs.field(factory=_inactive_row)


@attrs.frozen
class DataSetLayout:
    """``[data_set]``: how an item's measures sit in the stock data set (docs/layouts.md).

    ``item_is = "data_element"``: the item's reference names a data element and each measure
    is a category option combo of it (DHIS2's MSR/RTS data sets), or a template such as
    ``"SOH_{item}"`` that renders the item reference into a data element code (mSupply's own
    data set push). ``item_is = "category_option_combo"``: each measure is one data element and
    the item's reference names a category option combo of it ("push only 1 data element").
    Measure values may be a UID, a code or a name; they are resolved through metadata.
    No measures (the section absent) keeps the one-data-element-per-item behaviour.

    ``measures`` is a plain dict inside a frozen record (TOML tables structure to dicts): treat
    it as read-only.
    """

    item_is: ItemIs = "data_element"
    measures: dict[str, str] = attrs.field(factory=dict, hash=False)

    @property
    def configured(self) -> bool:
        """True when measures are named, so pushes and reports go by item and measure."""
        return bool(self.measures)

    def is_template(self, measure: str) -> bool:
        """Whether the measure's value is a data element code template (``"SOH_{item}"``)."""
        return TEMPLATE_FIELD in self.measures.get(measure, "")


TEMPLATE_FIELD = "{item}"
"""The placeholder a ``[data_set.measures]`` template replaces with the item's reference."""


@attrs.frozen
class OrderSettings:
    """``[order]``: how a requisition's lines are laid out in the Order program.

    With both ``item_data_element`` and ``quantity_data_element`` set, each event is one line
    (item in one data element, quantity in the other); otherwise each data element is an item and
    its value the quantity requested.
    """

    item_data_element: str | None = None
    quantity_data_element: str | None = None

    @property
    def layout(self) -> OrderLayout:
        """``"event_per_line"`` with both data elements set, else ``"data_element_per_item"``."""
        if self.item_data_element and self.quantity_data_element:
            return "event_per_line"
        return "data_element_per_item"


@attrs.frozen
class ReceiptSettings:
    """``[receipt]``: the Receipt program's consignment-number data element (code or UID)."""

    consignment_data_element: str | None = None


@attrs.frozen
class SmtpSettings:
    """``[smtp]``: the mail server that carries the one error e-mail per run."""

    host: str | None = None
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: Secret | None = attrs.field(default=None, repr=False, converter=_to_secret)
    password_env: str | None = None
    sender: str | None = None
    timeout: float = 30.0

    def resolved_password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Return the SMTP password: ``password``, else ``password_env``.

        Raises:
            ConfigError: ``password_env`` names a variable that is not set.
        """
        return _resolve(self.password, self.password_env, "smtp.password_env", environ)


@attrs.frozen
class SyncSettings:
    """``[sync]``: the scheduled job's state file, overlap window, interval, page size, and the
    workers of a program's first run (see :mod:`dhis2_lmis.run.sync`)."""

    state: str = "dhis2-lmis.sqlite"
    overlap_minutes: int = 5
    interval: str = "1d"
    page_size: int = 1000
    workers: int = 1

    @property
    def overlap(self) -> timedelta:
        """``overlap_minutes`` as a timedelta."""
        return timedelta(minutes=self.overlap_minutes)

    @property
    def interval_delta(self) -> timedelta:
        """``interval`` parsed by :func:`parse_interval` (validated when the config was made)."""
        return parse_interval(self.interval)


@attrs.frozen
class Dhis2Config:
    """Every setting of the mSupply "DHIS2 LMIS" preferences page, validated as a whole.

    Construction (directly, through a loader, or with ``attrs.evolve``) checks every section and
    raises one :class:`~dhis2_lmis.errors.ConfigError` listing every problem.

    Raises:
        ConfigError: at construction, when any setting is invalid.
    """

    dhis2: ServerSettings = attrs.field(factory=ServerSettings)
    lmis: LmisSettings = attrs.field(factory=LmisSettings)
    programs: ProgramSettings = attrs.field(factory=ProgramSettings)
    data_elements: DataElementTable = attrs.field(factory=DataElementTable)
    data_set: DataSetLayout = attrs.field(factory=DataSetLayout)
    order: OrderSettings = attrs.field(factory=OrderSettings)
    receipt: ReceiptSettings = attrs.field(factory=ReceiptSettings)
    smtp: SmtpSettings = attrs.field(factory=SmtpSettings)
    sync: SyncSettings = attrs.field(factory=SyncSettings)

    def __attrs_post_init__(self) -> None:
        given = {name: getattr(self, name) for name in _SECTIONS}
        # a plain table (Dhis2Config(dhis2={...})) is structured as a file's would be; anything
        # else is refused now, rather than failing with AttributeError on first use
        sections, problems, bad_keys = _structure_sections(given)
        for name, section in sections.items():
            if section is not given[name]:
                object.__setattr__(self, name, section)  # frozen: the attrs-documented way
        problems += [p for p in _check_sections(sections) if not _concerns(p, bad_keys)]
        if problems:
            raise ConfigError(sorted(problems, key=_section_rank))

    @property
    def enabled(self) -> bool:
        """The "Use DHIS2" switch: when False no request is ever sent."""
        return self.dhis2.enabled

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], *, environ: Mapping[str, str] | None = None
    ) -> Dhis2Config:
        """Build a config from a mapping shaped like the TOML file.

        Args:
            data: sections (``"dhis2"``, ``"lmis"``, ...) mapping to tables of keys.
            environ: where ``*_env`` variables are looked up; ``os.environ`` by default.

        Raises:
            ConfigError: listing every unknown key, wrong type, missing variable and invalid
                value at once.
        """
        return _load(data, os.environ if environ is None else environ)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
    ) -> Dhis2Config:
        """Load a TOML file (the format in ``docs/configuration.md``).

        Raises:
            ConfigError: the file cannot be read, is not TOML, or holds invalid settings.
        """
        return _load(_read_toml(path), os.environ if environ is None else environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Dhis2Config:
        """Load from the environment.

        ``DHIS2_LMIS_CONFIG`` names a TOML file to start from; without it the shorthand
        variables ``DHIS2_URL``, ``DHIS2_USERNAME``, ``DHIS2_PASSWORD``, ``DHIS2_TOKEN``,
        ``DHIS2_AUTH``, ``DHIS2_CLIENT_ID``, ``DHIS2_CLIENT_SECRET`` and ``DHIS2_ENABLED`` fill
        ``[dhis2]`` (``DHIS2_TOKEN`` alone selects token auth). In both cases
        ``DHIS2_LMIS_<SECTION>__<KEY>`` (for example ``DHIS2_LMIS_SYNC__PAGE_SIZE=1000`` or
        ``DHIS2_LMIS_DATA_ELEMENTS__STOCK_ON_HAND__ACTIVE=false``) overrides single keys last.

        Raises:
            ConfigError: as for :meth:`from_dict`, plus an unreadable ``DHIS2_LMIS_CONFIG`` file.
        """
        env = os.environ if environ is None else environ
        data, problems = _env_to_dict(env)
        return _load(data, env, problems)

    def to_dict(self) -> JsonObject:
        """Return the settings as a TOML-shaped mapping, every secret replaced by ``***``.

        Meant for display and diagnostics (``dhis2-lmis check``); unset keys are ``None``.
        """
        result: JsonObject = _CONVERTER.unstructure(self)
        return result


_SECTIONS: dict[str, type] = {
    "dhis2": ServerSettings,
    "lmis": LmisSettings,
    "programs": ProgramSettings,
    "data_elements": DataElementTable,
    "data_set": DataSetLayout,
    "order": OrderSettings,
    "receipt": ReceiptSettings,
    "smtp": SmtpSettings,
    "sync": SyncSettings,
}

# (section, secret field, field naming its environment variable)
_SECRET_ENV_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("dhis2", "password", "password_env"),
    ("dhis2", "client_secret", "client_secret_env"),
    ("dhis2", "token", "token_env"),
    ("smtp", "password", "password_env"),
)


# --------------------------------------------------------------------------------------------
# Secrets and problem values
# --------------------------------------------------------------------------------------------


def _resolve(
    secret: Secret | None, variable: str | None, key: str, environ: Mapping[str, str] | None
) -> str | None:
    if secret is not None:
        return secret.reveal()
    if variable is None:
        return None
    value = (os.environ if environ is None else environ).get(variable)
    if not value:
        raise ConfigError([_missing_variable(key, variable)])
    return value


def _missing_variable(key: str, variable: str) -> ConfigProblem:
    return ConfigProblem(
        key, _show(key, variable), f"environment variable {variable} is not set or is empty"
    )


def _show(key: str, value: object) -> str:
    """Render a value for a ConfigProblem: TOML-like, secrets and URL credentials masked."""
    if value is None:
        return _UNSET
    last = key.rsplit(".", 1)[-1].split("[", 1)[0]
    if last in _SECRET_KEYS:
        return _MASK
    if isinstance(value, Secret):
        return _MASK
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if last == "url":
            value = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", rf"\1{_MASK}@", value)
        return json.dumps(value)
    return repr(value)


# --------------------------------------------------------------------------------------------
# Semantic checks (shared by construction and loading)
# --------------------------------------------------------------------------------------------


def _problem(key: str, value: object, reason: str) -> ConfigProblem:
    return ConfigProblem(key, _show(key, value), reason)


def _check_url(url: str | None) -> list[ConfigProblem]:
    if url is None:
        return []
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(.*)$", url)
    if match is None or match.group(1).lower() not in ("http", "https"):
        return [_problem("dhis2.url", url, "must be an http:// or https:// address")]
    authority, rest = match.group(2), match.group(4)
    if "@" in authority:
        return [_problem("dhis2.url", url, "must not contain credentials; use username/password")]
    host = re.sub(r":\d*$", "", authority) if not authority.endswith("]") else authority
    if not host:
        return [_problem("dhis2.url", url, "has no host name")]
    port = authority[len(host) + 1 :] if authority.startswith(host + ":") else ""
    if port and not port.isdigit():
        return [_problem("dhis2.url", url, "has an invalid port")]
    if rest:
        return [_problem("dhis2.url", url, "must not contain a query string or fragment")]
    return []


def _require(key: str, present: bool, reason: str) -> list[ConfigProblem]:
    return [] if present else [ConfigProblem(key, _UNSET, reason)]


def _check_server(s: ServerSettings) -> list[ConfigProblem]:
    problems = _check_url(s.url)
    if s.enabled:
        problems += _require("dhis2.url", s.url is not None, "required when enabled = true")
        has_password = s.password is not None or s.password_env is not None
        if s.auth in ("basic", "body"):
            why = f"required for auth = {json.dumps(s.auth)}"
            problems += _require("dhis2.username", bool(s.username), why)
            problems += _require("dhis2.password", has_password, why + " (or password_env)")
        if s.auth == "token":
            has_token = s.token is not None or s.token_env is not None
            problems += _require(
                "dhis2.token", has_token, 'required for auth = "token" (or token_env)'
            )
        has_secret = s.client_secret is not None or s.client_secret_env is not None
        if s.auth == "body" and s.client_id:
            problems += _require(
                "dhis2.client_secret",
                has_secret,
                "required when client_id is set (or client_secret_env)",
            )
        if s.auth == "body" and has_secret and not s.client_id:
            problems += _require("dhis2.client_id", False, "required when client_secret is set")
    for key, value in (("timeout", s.timeout), ("connect_timeout", s.connect_timeout)):
        if not value > 0:
            problems.append(_problem(f"dhis2.{key}", value, "must be greater than 0 seconds"))
    if s.max_attempts < 1:
        problems.append(_problem("dhis2.max_attempts", s.max_attempts, "must be at least 1"))
    if isinstance(s.verify_tls, str) and not s.verify_tls.strip():
        problems.append(
            _problem("dhis2.verify_tls", s.verify_tls, "must be true, false or a CA bundle path")
        )
    return problems


def _check_period_format(value: str) -> list[ConfigProblem]:
    if value in PERIOD_TYPE_NAMES:
        return []
    if _PERIOD_TOKENS_RE.match(value):
        tokens = re.findall(r"YYYY|MM|DD", value)
        unique = len(set(tokens)) == len(tokens)
        if unique and "YYYY" in tokens and ("DD" not in tokens or "MM" in tokens):
            return []
    reason = "must be tokens YYYY, MM, DD (e.g. YYYYMM) or a DHIS2 period type name"
    close = difflib.get_close_matches(value, PERIOD_TYPE_NAMES, n=1)
    if close:
        reason += f"; did you mean {json.dumps(close[0])}?"
    return [_problem("lmis.period_format", value, reason)]


def _check_lmis(s: LmisSettings) -> list[ConfigProblem]:
    problems = [
        _problem("lmis.error_emails", address, "not an e-mail address (separate them with ';')")
        for address in s.error_emails
        if not _EMAIL_RE.match(address)
    ]
    problems += _check_period_format(s.period_format)
    return problems


def _check_programs(s: ProgramSettings) -> list[ConfigProblem]:
    return [
        _problem(f"programs.{name}", uid, _UID_REASON)
        for name, uid in (("order", s.order), ("receipt", s.receipt), ("str", s.str))
        if uid is not None and not is_uid(uid)
    ]


def _check_data_elements(s: DataElementTable) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for name in ("stock_on_hand", "received_quantity"):
        row: DataElementMapping = getattr(s, name)
        if row.active:
            why = "required when the row is active"
            problems += _require(f"data_elements.{name}.data_element", bool(row.data_element), why)
            problems += _require(
                f"data_elements.{name}.program_stage", bool(row.program_stage), why
            )
    return problems


def _check_data_set(s: DataSetLayout) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if not s.measures and s.item_is != "data_element":
        problems.append(
            _problem(
                "data_set.measures",
                None,
                "name at least one measure (measure name = data element) for "
                'item_is = "category_option_combo"',
            )
        )
    for name, value in s.measures.items():
        key = f"data_set.measures.{name}"
        if not value.strip():
            problems.append(_problem(key, value, "must name a UID, code, name or template"))
            continue
        rest = value.replace(TEMPLATE_FIELD, "")
        if "{" in rest or "}" in rest:
            problems.append(
                _problem(key, value, f"a template may hold only the placeholder {TEMPLATE_FIELD}")
            )
        elif s.item_is == "category_option_combo" and TEMPLATE_FIELD in value:
            problems.append(
                _problem(
                    key,
                    value,
                    "templates render data element codes per item: use them with item_is = "
                    '"data_element", or name the measure\'s data element',
                )
            )
    return problems


def _check_order(s: OrderSettings) -> list[ConfigProblem]:
    item, quantity = bool(s.item_data_element), bool(s.quantity_data_element)
    if item == quantity:
        return []
    missing = "order.quantity_data_element" if item else "order.item_data_element"
    return [ConfigProblem(missing, _UNSET, "set both item_data_element and quantity_data_element")]


def _check_smtp(s: SmtpSettings) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if not 0 < s.port < 65536:
        problems.append(_problem("smtp.port", s.port, "must be between 1 and 65535"))
    if s.starttls and s.ssl:
        problems.append(_problem("smtp.ssl", s.ssl, "use either ssl or starttls, not both"))
    if not s.timeout > 0:
        problems.append(_problem("smtp.timeout", s.timeout, "must be greater than 0 seconds"))
    has_password = s.password is not None or s.password_env is not None
    if has_password and not s.username:
        problems += _require("smtp.username", False, "required when a password is set")
    if s.host:
        problems += _require("smtp.sender", bool(s.sender), "required when host is set")
    if s.sender and not _EMAIL_RE.match(s.sender):
        problems.append(_problem("smtp.sender", s.sender, "not an e-mail address"))
    return problems


def _check_sync(s: SyncSettings) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if not s.state.strip():
        problems.append(_problem("sync.state", s.state, "must be a file path"))
    if s.overlap_minutes < 0:
        problems.append(_problem("sync.overlap_minutes", s.overlap_minutes, "must be 0 or more"))
    try:
        parse_interval(s.interval)
    except ValueError:
        problems.append(_problem("sync.interval", s.interval, "must look like 1d, 12h or 1h30m"))
    if s.page_size < 1:
        problems.append(_problem("sync.page_size", s.page_size, "must be at least 1"))
    if s.workers < 1:
        problems.append(_problem("sync.workers", s.workers, "must be at least 1"))
    return problems


def _check_sections(sections: Mapping[str, object]) -> list[ConfigProblem]:
    """Check every section that is present (a section that failed to structure is absent)."""
    problems: list[ConfigProblem] = []
    checks: tuple[tuple[str, type, Callable[..., list[ConfigProblem]]], ...] = (
        ("dhis2", ServerSettings, _check_server),
        ("lmis", LmisSettings, _check_lmis),
        ("programs", ProgramSettings, _check_programs),
        ("data_elements", DataElementTable, _check_data_elements),
        ("data_set", DataSetLayout, _check_data_set),
        ("order", OrderSettings, _check_order),
        ("smtp", SmtpSettings, _check_smtp),
        ("sync", SyncSettings, _check_sync),
    )
    for name, cls, check in checks:
        section = sections.get(name)
        if isinstance(section, cls):
            problems += check(section)
    return problems


# --------------------------------------------------------------------------------------------
# The converter
# --------------------------------------------------------------------------------------------


class _ValueProblem(ValueError):
    """A structuring failure whose message is already worded for the user."""


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise _ValueProblem("must be a string")
    return value


def _structure_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise _ValueProblem("must be true or false")


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise _ValueProblem("must be a whole number")


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _ValueProblem("must be a number")


def _structure_secret(value: object, _: type) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise _ValueProblem("must be a string")
    return Secret(value)


def _structure_verify_tls(value: object, _: type) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS | _FALSE_WORDS:
            return word in _TRUE_WORDS
        return value
    raise _ValueProblem("must be true, false or a CA bundle path")


def _structure_emails(value: object, _: type) -> tuple[str, ...]:
    if isinstance(value, str):
        return _split_emails(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return _split_emails(value)
    raise _ValueProblem("must be a ';'-separated string or a list of strings")


def _make_converter() -> Converter:
    """Build the one converter: strict simple types first, because class hooks capture them."""
    conv = Converter(forbid_extra_keys=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(Secret, _structure_secret)
    conv.register_unstructure_hook(Secret, lambda _: _MASK)
    conv.register_structure_hook(
        ServerSettings,
        make_dict_structure_fn(
            ServerSettings, conv, verify_tls=override(struct_hook=_structure_verify_tls)
        ),
    )
    conv.register_structure_hook(
        LmisSettings,
        make_dict_structure_fn(
            LmisSettings, conv, error_emails=override(struct_hook=_structure_emails)
        ),
    )
    return conv


_CONVERTER = _make_converter()


def _describe(exc: BaseException, type_: object) -> str:
    """Word one cattrs leaf failure for a user editing a TOML file."""
    if isinstance(exc, _ValueProblem):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required"
    if get_origin(type_) is Literal:
        return "must be one of " + ", ".join(json.dumps(a) for a in get_args(type_))
    if isinstance(exc, AttributeError | TypeError):
        return "must be a table of keys" if type_ is None else "has the wrong type"
    return f"is invalid ({type(exc).__name__})"


def _known_keys(cls: type) -> tuple[str, ...]:
    return tuple(a.name for a in attrs.fields(cls))


def _unknown_key(key: str, known: Iterable[str]) -> ConfigProblem:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {json.dumps(close[0])}?" if close else ""
    # never show the value: a misspelt "pasword" still holds a password
    return ConfigProblem(key, _MASK, f"unknown key (typo?){hint}")


def _lookup(data: object, path: str) -> object:
    """Follow ``a.b[2].c`` through raw data; None when it is not there."""
    current = data
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        if name and isinstance(current, Mapping):
            current = current.get(name)
        elif index and isinstance(current, list | tuple) and int(index) < len(current):
            current = current[int(index)]
        else:
            return None
    return current


def _flatten(exc: ClassValidationError, section: str, raw: object) -> list[ConfigProblem]:
    """Turn cattrs' exception group into problems, one per bad or unknown key."""
    extras: dict[str, ForbiddenExtraKeysError] = {}

    def fmt(inner: BaseException, type_: type | None) -> str:
        if isinstance(inner, ForbiddenExtraKeysError):
            token = f"\x00extra{len(extras)}"
            extras[token] = inner
            return token
        return _describe(inner, type_)

    problems: list[ConfigProblem] = []
    for message in transform_error(exc, path=section, format_exception=fmt):
        reason, _, path = message.rpartition(" @ ")
        if reason in extras:
            error = extras[reason]
            known = _known_keys(error.cl)
            problems += [_unknown_key(f"{path}.{k}", known) for k in sorted(error.extra_fields)]
        else:
            problems.append(ConfigProblem(path, _show(path, _lookup({section: raw}, path)), reason))
    return problems


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _structure_section(
    name: str, raw: object, cls: type[_T]
) -> tuple[_T | None, list[ConfigProblem], set[str]]:
    """Structure one section; return it, its problems, and the keys those problems concern.

    When some keys are wrong, the section is structured again without them, so the semantic
    checks still run on the rest and the user sees every problem in one pass.
    """
    if isinstance(raw, cls):
        return raw, [], set()
    if not isinstance(raw, Mapping):
        reason = f"must be a table ([{name}]) or a {cls.__name__}"
        return None, [ConfigProblem(name, _show(name, raw), reason)], {name}
    try:
        return _CONVERTER.structure(dict(raw), cls), [], set()
    except ClassValidationError as exc:
        problems = _flatten(exc, name, raw)
    bad_fields = {
        match.group(1)
        for p in problems
        if (match := re.match(rf"^{re.escape(name)}\.([A-Za-z0-9_]+)", p.key))
    }
    rest = {key: value for key, value in raw.items() if key not in bad_fields}
    try:
        partial = _CONVERTER.structure(rest, cls)
    except (ClassValidationError, ConfigError):  # pragma: no cover - defensive
        return None, problems, {name}
    return partial, problems, {f"{name}.{field}" for field in bad_fields}


def _structure_sections(
    data: Mapping[str, object],
) -> tuple[dict[str, object], list[ConfigProblem], set[str]]:
    """Structure every section present in ``data``; sections already built pass as they are.

    Returns the sections that could be built (even partly), the problems, and the keys those
    problems concern, so that later checks do not report a mistyped key again as missing.
    """
    sections: dict[str, object] = {}
    problems: list[ConfigProblem] = []
    bad_keys: set[str] = set()
    for name, cls in _SECTIONS.items():
        if name not in data:
            continue
        section, found, bad = _structure_section(name, data[name], cls)
        problems += found
        bad_keys |= bad
        if section is not None:
            sections[name] = section
    if "dhis2.auth" in bad_keys:  # which credentials are needed depends on the mode
        bad_keys |= {f"dhis2.{key}" for key in ("username", "password", "token", "client_secret")}
    return sections, problems, bad_keys


def _concerns(problem: ConfigProblem, keys: set[str]) -> bool:
    return any(problem.key == k or problem.key.startswith((f"{k}.", f"{k}[")) for k in keys)


def _section_rank(problem: ConfigProblem) -> int:
    order = list(_SECTIONS)
    first = re.split(r"[.\[]", problem.key, maxsplit=1)[0]
    return order.index(first) if first in order else len(order)


def _resolve_env_secrets(
    sections: dict[str, object], raw: Mapping[str, object], environ: Mapping[str, str]
) -> list[ConfigProblem]:
    """Replace each ``*_env`` reference by the variable's value, stored as a Secret."""
    problems: list[ConfigProblem] = []
    for name, secret_field, env_field in _SECRET_ENV_FIELDS:
        section = sections.get(name)
        if not isinstance(section, ServerSettings | SmtpSettings):
            continue
        variable = getattr(section, env_field)
        if variable is None:
            continue
        raw_section = raw.get(name)
        if isinstance(raw_section, Mapping) and secret_field in raw_section:
            problems.append(
                _problem(
                    f"{name}.{env_field}",
                    variable,
                    f"set either {secret_field} or {env_field}, not both",
                )
            )
            continue
        value = environ.get(variable)
        if not value:
            problems.append(_missing_variable(f"{name}.{env_field}", variable))
            continue
        # Any: the field name varies; attrs re-checks it when evolve() builds the record
        changes: dict[str, Any] = {secret_field: Secret(value)}
        sections[name] = attrs.evolve(section, **changes)
    return problems


def _load(
    data: Mapping[str, object],
    environ: Mapping[str, str],
    problems: list[ConfigProblem] | None = None,
) -> Dhis2Config:
    problems = list(problems or [])
    if not isinstance(data, Mapping):
        raise ConfigError([ConfigProblem("", "", "the configuration must be a table of sections")])
    for key in data:
        if key not in _SECTIONS:
            problems.append(_unknown_key(str(key), _SECTIONS))
    sections, found, bad_keys = _structure_sections(data)
    problems += found
    later = _resolve_env_secrets(sections, data, environ)
    defaults = {name: cls() for name, cls in _SECTIONS.items() if name not in sections}
    later += _check_sections({**defaults, **sections})
    # a key already reported as mistyped or unknown is not reported again as missing
    problems += [p for p in later if not _concerns(p, bad_keys)]
    if problems:
        raise ConfigError(sorted(problems, key=_section_rank))
    config = Dhis2Config(**sections)  # type: ignore[arg-type]  # sections typed by _SECTIONS
    if config.lmis.error_emails and not config.smtp.host:
        # a warning, not a problem: the example file sets error_emails without [smtp]
        log.warning("lmis.error_emails is set but smtp.host is not: error e-mails cannot be sent")
    log.debug("configuration loaded (enabled=%s, url=%s)", config.enabled, config.dhis2.url)
    return config


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


def _file_problem(reason: str) -> ConfigError:
    return ConfigError([ConfigProblem("", "", reason)])


def _read_toml(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a TOML file, turning every way it can be unusable into a ConfigError naming it.

    A UTF-8 byte order mark is skipped (Windows Notepad writes one); any other encoding is
    refused with the fix, rather than surfacing as a UnicodeDecodeError or a TOML syntax error
    at line 1.
    """
    where = os.fspath(path)
    file = Path(where)
    if file.is_dir():
        raise _file_problem(f"{where} is a folder, not a configuration file")
    try:
        raw = file.read_bytes()
    except FileNotFoundError as exc:
        raise _file_problem(f"configuration file {where} does not exist") from exc
    except OSError as exc:
        reason = f"cannot read configuration file {where}: {exc.strerror or exc}"
        raise _file_problem(reason) from exc
    text = _decode_utf8(raw, where)
    if not text.strip():
        raise _file_problem(
            f"configuration file {where} is empty: it needs at least dhis2.url and the "
            "credentials (see docs/configuration.md)"
        )
    try:
        data: dict[str, object] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _file_problem(f"{where} is not valid TOML: {exc}") from exc
    return data


def _decode_utf8(raw: bytes, where: str) -> str:
    save_as = "save the file as UTF-8 (in Notepad: File > Save as > Encoding: UTF-8)"
    if raw.startswith(_UTF16_BOMS) or b"\x00" in raw:
        raise _file_problem(f"{where} is not UTF-8 text (it looks like UTF-16): {save_as}")
    try:
        return raw.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _file_problem(
            f"{where} is not UTF-8 text (byte {exc.start + 1}, line {line}): {save_as}"
        ) from exc


_SHORTHAND_ENV: tuple[tuple[str, str], ...] = (
    ("DHIS2_ENABLED", "enabled"),
    ("DHIS2_URL", "url"),
    ("DHIS2_AUTH", "auth"),
    ("DHIS2_USERNAME", "username"),
    ("DHIS2_PASSWORD", "password"),
    ("DHIS2_CLIENT_ID", "client_id"),
    ("DHIS2_CLIENT_SECRET", "client_secret"),
    ("DHIS2_TOKEN", "token"),
)


def _env_to_dict(environ: Mapping[str, str]) -> tuple[dict[str, object], list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    file = environ.get("DHIS2_LMIS_CONFIG")
    if file:
        data = _read_toml(file)
    else:
        server: dict[str, object] = {
            key: environ[var] for var, key in _SHORTHAND_ENV if environ.get(var)
        }
        if "token" in server and "auth" not in server and "username" not in server:
            server["auth"] = "token"
        data = {"dhis2": server}
    for variable in sorted(environ):
        if not variable.startswith(_ENV_PREFIX) or "__" not in variable:
            continue
        parts = variable[len(_ENV_PREFIX) :].lower().split("__")
        table: dict[str, object] = data
        for part in parts[:-1]:
            inner = table.setdefault(part, {})
            if not isinstance(inner, dict):
                problems.append(
                    ConfigProblem(".".join(parts), "", f"{variable} overrides a plain value")
                )
                break
            table = inner
        else:
            table[parts[-1]] = environ[variable]
    return data, problems
