"""mSupply items, stores and customers, and how they meet DHIS2 data elements and org units.

mSupply keeps the DHIS2 reference of an item in its universal code or in one of the user fields
1, 2, 3 or 6 ("Item field reference"), and says whether that reference is a data element code or
a UID ("Data element ID scheme"). Stores keep their org unit in the custom field ``Dhis2Code``
("Store field reference"); customers (mSupply names) in a name field ("Name field reference").
See LMIS_DOMAIN.md §4-5.

Events read back from DHIS2 normally carry data elements in the configured scheme, because the
readers ask for ``dataElementIdScheme``; some servers ignore that parameter, and org units always
come back as UIDs. The resolvers therefore translate between codes and UIDs through batched
metadata look-ups (``/api/dataElements``, ``/api/organisationUnits`` with ``filter=...:in:[...]``),
batched by the session's one rule (:meth:`Dhis2Session.batches`: no request URL exceeds
``MAX_URL_LENGTH``) and cached with a TTL. The look-ups and the caching live once, in
:class:`_MetadataCache`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Generic, Literal, Protocol, TypeAlias, TypeVar, Union, get_args

import attrs

from dhis2_lmis.config import TEMPLATE_FIELD, DataSetLayout, ItemField
from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2._uids import IdScheme, is_uid
from dhis2_lmis.dhis2.metadata import (
    CATEGORY_OPTION_COMBO_FIELDS,
    CATEGORY_OPTION_COMBOS,
    DATA_ELEMENT_FIELDS,
    DATA_ELEMENTS,
    LAYOUT_DATA_ELEMENT_FIELDS,
    ORG_UNIT_FIELDS,
    ORG_UNITS,
    CategoryOptionComboInfo,
    DataElementInfo,
    OrgUnitInfo,
    parse_category_option_combo,
    parse_data_element,
    parse_org_unit,
)
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import ConfigError, ConfigProblem, ResponseFormatError, UnknownReferenceError
from dhis2_lmis.lmis.models import Customer, Item, Store

__all__ = [
    "DEFAULT_MAX_CACHED",
    "ITEM_FIELDS",
    "DataElementInfo",
    "IdScheme",
    "ItemField",
    "ItemResolver",
    "LayoutCell",
    "LayoutResolver",
    "OrgUnitInfo",
    "OrgUnitResolver",
    "load_customers",
    "load_items",
    "load_stores",
]

log = logging.getLogger(__name__)


ITEM_FIELDS: tuple[str, ...] = get_args(ItemField)
"""Every accepted ``item_field``: mSupply offers exactly these as the item field reference."""

_ID_SCHEMES: tuple[str, ...] = get_args(IdScheme)

DEFAULT_MAX_CACHED = 50_000
"""Most look-up answers a resolver's cache holds (``max_cached``): a few megabytes, more than
the data elements and facilities of a national server, so only a long-running sync that meets
ever new (or mistyped) references ever drops one."""


# -- loaders ------------------------------------------------------------------------------------

_Source: TypeAlias = Union[str, "os.PathLike[str]", IO[str]]
_Format = Literal["csv", "json"]
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})


def load_items(source: _Source, *, format: _Format | None = None) -> tuple[Item, ...]:
    """Read items from a CSV or JSON file.

    CSV has a header row; JSON is a list of objects. Known columns are ``code``, ``name``,
    ``universal_code``, ``include_in_dhis2_push`` (true/false/1/0/yes/no, empty means true) and
    ``user_field_1`` .. ``user_field_6``; any other column (or, in JSON, the keys of a
    ``custom_fields`` object) becomes a custom field. Empty cells are treated as absent.

    Args:
        source: a path, or an open text file.
        format: ``"csv"`` or ``"json"``; by default taken from the file name's suffix.

    Raises:
        ConfigError: the file cannot be read, or rows are invalid; every problem names the
            file, the row (CSV: line of the file, header = 1; JSON: 1-based list position) and
            the column.
    """
    return _load(source, format, _make_item)


def load_stores(source: _Source, *, format: _Format | None = None) -> tuple[Store, ...]:
    """Read stores (``code``, ``name``, custom fields such as ``Dhis2Code``) from CSV or JSON.

    Raises:
        ConfigError: as :func:`load_items`.
    """
    return _load(source, format, _make_store)


def load_customers(source: _Source, *, format: _Format | None = None) -> tuple[Customer, ...]:
    """Read customers (``code``, ``name``, custom fields) from CSV or JSON.

    Raises:
        ConfigError: as :func:`load_items`.
    """
    return _load(source, format, _make_customer)


_R = TypeVar("_R")
_Cells = Mapping[str, JsonValue]


class _RowError(Exception):
    """A bad cell, caught by the loader and turned into a ConfigProblem."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.value = value
        self.reason = reason


def _load(source: _Source, fmt: _Format | None, make: Callable[[_Cells], _R]) -> tuple[_R, ...]:
    label, text = _read_source(source)
    fmt = fmt or _format_of(label)
    rows = _csv_rows(label, text) if fmt == "csv" else _json_rows(label, text)
    records: list[_R] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for number, cells in rows:
        try:
            record = make(cells)
        except _RowError as exc:
            problems.append(
                ConfigProblem(f"{label}, row {number}, column {exc.column}", exc.value, exc.reason)
            )
            continue
        code = str(cells.get("code"))
        if code in seen:
            problems.append(
                ConfigProblem(
                    f"{label}, row {number}, column code",
                    code,
                    f"duplicate code (first on row {seen[code]})",
                )
            )
            continue
        seen[code] = number
        records.append(record)
    if problems:
        raise ConfigError(problems)
    return tuple(records)


def _read_source(source: _Source) -> tuple[str, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return str(path), path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                [ConfigProblem(str(path), "", f"cannot read: {_read_failure(exc)}")]
            ) from exc
    label = str(getattr(source, "name", "<stream>"))
    text = source.read()
    return label, text.removeprefix("\ufeff")


def _read_failure(exc: OSError | UnicodeDecodeError) -> str:
    """Why a file could not be read, in the words an operator can act on (no exception repr)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason}): save it as CSV UTF-8"
    return exc.strerror or str(exc)


def foreign_separator(header: Sequence[str]) -> str | None:
    """The separator of a CSV header read as one cell: ``;``, a tab or ``|``; None otherwise.

    A spreadsheet with a regional setting saves "CSV" with ``;``; read with commas, its header
    is one cell, and every later message ("missing column") would puzzle its reader.
    """
    cells = header[0] if len(header) == 1 else ""
    found = next((sep for sep in (";", "\t", "|") if sep in cells), None)
    if found is None:
        return None
    return "a tab" if found == "\t" else repr(found)


def _format_of(label: str) -> _Format:
    suffix = Path(label).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    raise ConfigError(
        [ConfigProblem(label, suffix, "cannot tell CSV from JSON: use .csv or .json, or format=")]
    )


def _csv_rows(label: str, text: str) -> Iterator[tuple[int, _Cells]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise ConfigError([ConfigProblem(label, "", "empty file: expected a header row")])
    separator = foreign_separator(header)
    if separator is not None:
        raise ConfigError(
            [
                ConfigProblem(
                    f"{label}, header",
                    header[0],
                    f"this file is separated by {separator}: save it as comma-separated CSV",
                )
            ]
        )
    names = [_column_name(h) for h in header]
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        number = reader.line_num
        if len(row) > len(names):
            raise ConfigError(
                [
                    ConfigProblem(
                        f"{label}, row {number}, column {len(names) + 1}",
                        row[len(names)],
                        f"{len(row)} cells but the header has {len(names)} columns",
                    )
                ]
            )
        cells: dict[str, JsonValue] = {}
        for name, cell in zip(names, row, strict=False):
            value = cell.strip()
            if value:
                cells[name] = value
        yield number, cells


_KNOWN_COLUMNS = frozenset(
    {"code", "name", "universal_code", "include_in_dhis2_push", "custom_fields"}
    | {f"user_field_{n}" for n in range(1, 7)}
)


def _column_name(header: str) -> str:
    """Known columns match case-insensitively; custom field names keep their spelling."""
    name = header.strip()
    return name.lower() if name.lower() in _KNOWN_COLUMNS else name


def _json_rows(label: str, text: str) -> Iterator[tuple[int, _Cells]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError([ConfigProblem(label, "", f"not valid JSON: {exc}")]) from exc
    if not isinstance(data, list):
        raise ConfigError(
            [ConfigProblem(label, type(data).__name__, "expected a JSON list of objects")]
        )
    for number, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise ConfigError(
                [
                    ConfigProblem(
                        f"{label}, row {number}", type(obj).__name__, "expected a JSON object"
                    )
                ]
            )
        yield number, {_column_name(k): v for k, v in obj.items()}


def _text(cells: _Cells, column: str) -> str | None:
    value = cells.get(column)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _RowError(column, json.dumps(value), "expected text")
    return str(value).strip() or None


def _required(cells: _Cells, column: str) -> str:
    text = _text(cells, column)
    if text is None:
        raise _RowError(column, "", "required, but missing or empty")
    return text


def _flag(cells: _Cells, column: str, default: bool) -> bool:
    value = cells.get(column)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _RowError(column, str(value), "expected true/false, 1/0 or yes/no")


def _custom_fields(cells: _Cells, reserved: frozenset[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    nested = cells.get("custom_fields")
    if nested is not None:
        if not isinstance(nested, dict):
            raise _RowError("custom_fields", json.dumps(nested), "expected an object")
        for key in nested:
            try:
                text = _text(nested, key)
            except _RowError as exc:
                raise _RowError(f"custom_fields.{key}", exc.value, exc.reason) from None
            if text is not None:
                fields[key] = text
    for key in cells:
        if key in reserved or key == "custom_fields":
            continue
        text = _text(cells, key)
        if text is not None:
            fields[key] = text
    return fields


_ITEM_RESERVED = frozenset({"code", "name", "universal_code", "include_in_dhis2_push"})
_PARTY_RESERVED = frozenset({"code", "name"})


def _make_item(cells: _Cells) -> Item:
    return Item(
        code=_required(cells, "code"),
        name=_required(cells, "name"),
        universal_code=_text(cells, "universal_code"),
        custom_fields=_custom_fields(cells, _ITEM_RESERVED),
        include_in_dhis2_push=_flag(cells, "include_in_dhis2_push", True),
    )


def _make_store(cells: _Cells) -> Store:
    return Store(
        code=_required(cells, "code"),
        name=_required(cells, "name"),
        custom_fields=_custom_fields(cells, _PARTY_RESERVED),
    )


def _make_customer(cells: _Cells) -> Customer:
    return Customer(
        code=_required(cells, "code"),
        name=_required(cells, "name"),
        custom_fields=_custom_fields(cells, _PARTY_RESERVED),
    )


# -- the shared metadata cache ------------------------------------------------------------------


class _Identified(Protocol):
    @property
    def uid(self) -> str: ...

    @property
    def code(self) -> str | None: ...

    @property
    def name(self) -> str: ...


_T = TypeVar("_T", bound=_Identified)
_Property = Literal["id", "code", "name"]


class _MetadataCache(Generic[_T]):
    """Batched, URL-length-packed, TTL-cached look-ups of one metadata collection by id or code.

    One request per chunk: ``filter=<property>:in:[k1,k2,...]`` with as many keys as fit in the
    session's URL budget once encoded exactly as sent (``[``, ``]``, ``:`` and ``,`` are
    percent-encoded, so each costs three bytes), in the callers' order. The page size is one
    more than the chunk's key count, so an answer by id or code is one short page; names are
    not unique, and the session's page loop reads on when a page is full.

    Every answer is cached under its UID and its code (and, when looked up by name, its name),
    and a key the server does not know is cached as missing, so asking again within ``ttl_s``
    sends nothing. The cache is bounded, so a client that runs for months holds no more than
    ``max_cached`` entries whatever it meets: past that, expired entries go first, then the
    oldest (an answer evicted early is simply asked for again).
    """

    def __init__(
        self,
        session: Dhis2Session,
        *,
        collection: str,
        fields: str,
        parse: Callable[[JsonObject], _T],
        ttl_s: float,
        clock: Callable[[], float],
        max_cached: int,
    ) -> None:
        if isinstance(max_cached, bool) or not isinstance(max_cached, int) or max_cached < 1:
            raise ConfigError(
                f"max_cached must be a whole number of at least 1, got {max_cached!r}"
            )
        self.session = session
        self.collection = collection
        self.fields = fields
        self.ttl_s = ttl_s
        self.max_cached = max_cached
        self._parse = parse
        self._clock = clock
        # (property, key) -> (the record, None for a miss; when fetched), oldest first
        self._entries: dict[tuple[_Property, str], tuple[_T | None, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything; the next look-up asks the server again."""
        with self._lock:
            self._entries.clear()

    def lookup(self, prop: _Property, keys: Iterable[str]) -> dict[str, _T]:
        """Records for those ``keys`` the server knows, keyed by the key asked for."""
        wanted = dict.fromkeys(k for k in keys if k)
        with self._lock:
            now = self._clock()
            found: dict[str, _T] = {}
            missing: list[str] = []
            for key in wanted:
                entry = self._entries.get((prop, key))
                if entry is not None and now - entry[1] < self.ttl_s:
                    if entry[0] is not None:
                        found[key] = entry[0]
                else:
                    missing.append(key)
            if missing:
                stamp = self._clock()
                answered: dict[str, _T] = {}
                for record in self._fetch(prop, missing):
                    self._keep(("id", record.uid), record, stamp)
                    if record.code:
                        self._keep(("code", record.code), record, stamp)
                    if prop == "name":
                        self._keep(("name", record.name), record, stamp)
                    answered_as = {"id": record.uid, "code": record.code, "name": record.name}[prop]
                    if answered_as:
                        answered[answered_as] = record
                for key in missing:
                    hit = answered.get(key)
                    if hit is None:
                        self._keep((prop, key), None, stamp)  # remember the miss too
                    else:
                        found[key] = hit
                self._bound(stamp)
            return found

    def _keep(self, key: tuple[_Property, str], record: _T | None, stamp: float) -> None:
        """Store an answer as the newest entry (a refreshed one moves to the end)."""
        self._entries.pop(key, None)
        self._entries[key] = (record, stamp)

    def _bound(self, now: float) -> None:
        """Past ``max_cached`` entries, drop the expired ones, then the oldest.

        Entries are kept in the order they were fetched, so both are a run at the front.
        """
        entries = self._entries
        excess = len(entries) - self.max_cached
        if excess <= 0:
            return
        stale: list[tuple[_Property, str]] = []
        for key, (_, fetched) in entries.items():
            if len(stale) >= excess and now - fetched < self.ttl_s:
                break
            stale.append(key)
        for key in stale:
            del entries[key]

    # -- fetching --------------------------------------------------------------------------

    def _fetch(self, prop: _Property, keys: Sequence[str]) -> list[_T]:
        # DHIS2 splits an ``in`` list on commas and has no escape, so such keys go alone.
        listable = [k for k in keys if "," not in k]
        # More than any chunk's key count: an answer by id or code is one short page.
        page_size = len(keys) + 1
        chunks = self.session.batches(
            self.collection,
            {"fields": self.fields},
            listable,
            lambda chunk: {"filter": f"{prop}:in:[{','.join(chunk)}]"},
            page_size=page_size,
        )
        lists = [f"{prop}:in:[{','.join(chunk)}]" for chunk in chunks]
        lists += [f"{prop}:eq:{k}" for k in keys if "," in k]
        log.debug(
            "looking up %d %s by %s in %d requests", len(keys), self.collection, prop, len(lists)
        )
        records: list[_T] = []
        for filter_value in lists:
            # Names are not unique: the session's page loop reads on when a page is full.
            for page in self.session.iter_pages(
                self.collection,
                {"filter": filter_value, "fields": self.fields},
                items_key=self.collection,
                page_size=page_size,
            ):
                records.extend(self._row(row) for row in page.items)
        return records

    def _row(self, row: JsonValue) -> _T:
        if not isinstance(row, dict):
            raise ResponseFormatError(
                f"{self.collection} entry is not an object",
                method="GET",
                path=f"/api/{self.collection}",
            )
        return self._parse(row)


def _check_scheme(id_scheme: str) -> None:
    if id_scheme not in _ID_SCHEMES:
        raise ConfigError(
            [ConfigProblem("id_scheme", id_scheme, f"expected one of {', '.join(_ID_SCHEMES)}")]
        )


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# -- items ----------------------------------------------------------------------------------------


class ItemResolver:
    """Finds the DHIS2 data element of an item, and the item of a data element.

    Args:
        items: every mSupply item that may appear in DHIS2 data.
        item_field: where each item keeps its reference (see :data:`ITEM_FIELDS`); user fields
            are read from ``custom_fields``.
        id_scheme: whether those references are data element codes or UIDs.
        session: needed only to translate between codes and UIDs.
        ttl_s: how long a look-up answer is trusted.
        clock: monotonic seconds, injectable for tests.
        max_cached: most look-up answers kept (hits and misses, by UID and by code); past it
            the expired and then the oldest are dropped.

    Raises:
        ConfigError: ``item_field`` or ``id_scheme`` is unknown, or two items share a reference
            (each such pair is named).
    """

    def __init__(
        self,
        items: Iterable[Item],
        *,
        item_field: ItemField = "universal_code",
        id_scheme: IdScheme = "CODE",
        session: Dhis2Session | None = None,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = DEFAULT_MAX_CACHED,
    ) -> None:
        if item_field not in ITEM_FIELDS:
            raise ConfigError(
                [
                    ConfigProblem(
                        "item_field", item_field, f"expected one of {', '.join(ITEM_FIELDS)}"
                    )
                ]
            )
        _check_scheme(id_scheme)
        self.items: tuple[Item, ...] = tuple(items)
        self.item_field: ItemField = item_field
        self.id_scheme: IdScheme = id_scheme
        self.session = session
        self._by_ref: dict[str, Item] = {}
        problems: list[ConfigProblem] = []
        for item in self.items:
            ref = self.dhis2_ref(item)
            if ref is None:
                continue
            other = self._by_ref.get(ref)
            if other is not None:
                problems.append(
                    ConfigProblem(
                        item_field,
                        ref,
                        f"items {other.code!r} and {item.code!r} share this reference",
                    )
                )
                continue
            self._by_ref[ref] = item
        if problems:
            raise ConfigError(problems)
        self._cache: _MetadataCache[DataElementInfo] | None = None
        if session is not None:
            self._cache = _MetadataCache(
                session,
                collection=DATA_ELEMENTS,
                fields=DATA_ELEMENT_FIELDS,
                parse=parse_data_element,
                ttl_s=ttl_s,
                clock=clock,
                max_cached=max_cached,
            )

    def __repr__(self) -> str:
        return (
            f"ItemResolver({len(self.items)} items, item_field={self.item_field!r}, "
            f"id_scheme={self.id_scheme!r})"
        )

    def dhis2_ref(self, item: Item) -> str | None:
        """The item's data element reference (code or UID per ``id_scheme``), None when empty."""
        if self.item_field == "universal_code":
            return _blank_to_none(item.universal_code)
        return _blank_to_none(item.custom_fields.get(self.item_field))

    def item_for(self, ref: str) -> Item | None:
        """The item whose reference is ``ref`` (in the configured scheme), or None."""
        return self._by_ref.get(ref.strip())

    def push_items(self) -> tuple[Item, ...]:
        """Items marked ``include_in_dhis2_push``, in their given order."""
        return tuple(item for item in self.items if item.include_in_dhis2_push)

    def describe_lookup(self, ref: str) -> str:
        """Why ``ref`` matched nothing, worded for a ``RecordProblem``."""
        if self.item_field == "universal_code":
            return f"no item has universal code {ref}"
        return f"no item has {self.item_field} = {ref}"

    # -- translation ---------------------------------------------------------------------------

    def resolve_uids(self, codes: Iterable[str]) -> dict[str, DataElementInfo]:
        """Data elements by code, for the codes the server knows (batched and cached).

        Raises:
            ConfigError: no session was given.
            Dhis2Error: the look-up failed (see :meth:`Dhis2Session.request`).
        """
        return self._require_cache().lookup("code", codes)

    def resolve_codes(self, uids: Iterable[str]) -> dict[str, DataElementInfo]:
        """Data elements by UID, for the UIDs the server knows (batched and cached).

        Raises:
            ConfigError: no session was given.
            Dhis2Error: the look-up failed.
        """
        return self._require_cache().lookup("id", uids)

    def uid_for(self, code: str) -> str | None:
        """The UID of the data element with this code, or None when the server has none."""
        info = self.resolve_uids((code,)).get(code)
        return info.uid if info else None

    def code_for(self, uid: str) -> str | None:
        """The code of the data element with this UID, or None (unknown, or it has no code)."""
        info = self.resolve_codes((uid,)).get(uid)
        return info.code if info else None

    def prefetch(self, refs: Iterable[str]) -> None:
        """Translate, in one batched look-up, the refs an answer carried in the wrong scheme.

        Readers ask DHIS2 for data elements in the configured scheme, but some servers ignore
        ``dataElementIdScheme`` and a data element without a code always comes back as its UID.
        Call this with a page's refs, then :meth:`item_for_ref` each: the look-ups hit the
        cache. With UIDs configured, or without a session, there is nothing to translate.
        """
        if self.id_scheme != "CODE" or self._cache is None:
            return
        pending = {r for r in (ref.strip() for ref in refs) if is_uid(r) and r not in self._by_ref}
        if pending:
            self._cache.lookup("id", pending)

    def item_for_ref(self, ref: str) -> Item | None:
        """The item of a data element ref as an answer carried it: configured scheme or UID.

        The one id-scheme translation of the readers (see :meth:`prefetch`); never raises for a
        missing session: an untranslatable ref simply has no item.
        """
        item = self.item_for(ref)
        translatable = self.id_scheme == "CODE" and self._cache is not None
        if item is None and translatable and is_uid(ref.strip()):
            item = self.item_for_data_element(ref, "UID")
        return item

    def item_for_data_element(self, data_element_ref: str, scheme_of_ref: IdScheme) -> Item | None:
        """The item of a data element id as an event carried it, in either scheme.

        Readers ask for the configured ``dataElementIdScheme``, but servers may ignore it
        (tracker endpoints before 2.41 often do), so a ref in the other scheme is translated
        through the cache. Call :meth:`resolve_codes` or :meth:`resolve_uids` with a page's
        refs first to translate the whole page in one request.

        Raises:
            ConfigError: translation is needed but no session was given.
            Dhis2Error: the look-up failed.
        """
        _check_scheme(scheme_of_ref)
        ref = data_element_ref.strip()
        if scheme_of_ref == self.id_scheme:
            return self.item_for(ref)
        translated = self.code_for(ref) if scheme_of_ref == "UID" else self.uid_for(ref)
        return self.item_for(translated) if translated else None

    @property
    def cached(self) -> int:
        """How many look-up answers the cache holds now (never more than ``max_cached``)."""
        return 0 if self._cache is None else len(self._cache)

    def refresh(self) -> None:
        """Forget cached look-ups, so metadata changed on the server is seen."""
        if self._cache is not None:
            self._cache.clear()

    def _require_cache(self) -> _MetadataCache[DataElementInfo]:
        if self._cache is None:
            raise ConfigError(
                "translating data element codes and UIDs needs a session: "
                "pass session= to ItemResolver"
            )
        return self._cache


_P = TypeVar("_P", Store, Customer)


# -- org units ------------------------------------------------------------------------------------


class OrgUnitResolver:
    """Finds the org unit of a store or customer, and the store or customer of an org unit.

    Args:
        stores: mSupply stores; each keeps its org unit in the custom field ``store_field``.
        customers: mSupply customers; each keeps its org unit in the custom field
            ``name_field`` (None: customers are not mapped).
        store_field: the store custom field holding the org unit ("Store field reference").
        name_field: the customer field holding the org unit ("Name field reference").
        id_scheme: whether those references are org unit UIDs or codes.
        session: needed only to translate between codes and UIDs.
        ttl_s: how long a look-up answer is trusted.
        clock: monotonic seconds, injectable for tests.
        max_cached: most look-up answers kept (hits and misses, by UID and by code); past it
            the expired and then the oldest are dropped.

    Raises:
        ConfigError: ``id_scheme`` is unknown, or two stores (or two customers) share an org
            unit (each such pair is named).
    """

    def __init__(
        self,
        stores: Iterable[Store] = (),
        customers: Iterable[Customer] = (),
        *,
        store_field: str = "Dhis2Code",
        name_field: str | None = None,
        id_scheme: IdScheme = "UID",
        session: Dhis2Session | None = None,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = DEFAULT_MAX_CACHED,
    ) -> None:
        _check_scheme(id_scheme)
        self.stores: tuple[Store, ...] = tuple(stores)
        self.customers: tuple[Customer, ...] = tuple(customers)
        self.store_field = store_field
        self.name_field = name_field
        self.id_scheme: IdScheme = id_scheme
        self.session = session
        problems: list[ConfigProblem] = []
        self._stores = _index(self.stores, self.org_unit_for, "stores", store_field, problems)
        self._customers = _index(
            self.customers, self.org_unit_for, "customers", name_field or "", problems
        )
        if problems:
            raise ConfigError(problems)
        self._cache: _MetadataCache[OrgUnitInfo] | None = None
        if session is not None:
            self._cache = _MetadataCache(
                session,
                collection=ORG_UNITS,
                fields=ORG_UNIT_FIELDS,
                parse=parse_org_unit,
                ttl_s=ttl_s,
                clock=clock,
                max_cached=max_cached,
            )

    def __repr__(self) -> str:
        return (
            f"OrgUnitResolver({len(self.stores)} stores, {len(self.customers)} customers, "
            f"id_scheme={self.id_scheme!r})"
        )

    def org_unit_for(self, store_or_customer: Store | Customer) -> str | None:
        """The org unit reference of a store or customer; None when its field is empty."""
        if isinstance(store_or_customer, Store):
            return _blank_to_none(store_or_customer.custom_fields.get(self.store_field))
        if self.name_field is None:
            return None
        return _blank_to_none(store_or_customer.custom_fields.get(self.name_field))

    def skipped_stores(self) -> tuple[Store, ...]:
        """Stores whose org unit field is empty: nothing is sent to or read for them."""
        return tuple(s for s in self.stores if self.org_unit_for(s) is None)

    def store_for(self, org_unit: str) -> Store | None:
        """The store mapped to ``org_unit``, given as a UID or a code.

        Raises:
            Dhis2Error: a translation look-up failed.
        """
        return self._match(self._stores, org_unit)

    def customer_for(self, org_unit: str) -> Customer | None:
        """The customer mapped to ``org_unit``, given as a UID or a code.

        Raises:
            Dhis2Error: a translation look-up failed.
        """
        return self._match(self._customers, org_unit)

    def describe_lookup(self, org_unit: str) -> str:
        """Why ``org_unit`` matched nothing, worded for a ``RecordProblem``."""
        text = f"no store has {self.store_field} = {org_unit}"
        if self.name_field is None:
            return text + " (customers are not mapped: no name field is configured)"
        return text + f" and no customer has {self.name_field} = {org_unit}"

    # -- translation ---------------------------------------------------------------------------

    def prefetch(self, org_units: Iterable[str]) -> None:
        """Translate, in one batched look-up, the org units no store or customer names directly.

        Answers carry org unit UIDs (or codes) that may be in the other scheme than the one
        configured; afterwards :meth:`store_for` and :meth:`customer_for` hit the cache instead
        of sending one request per unmapped facility. Without a session it does nothing.
        """
        if self._cache is None:
            return
        pending = {
            ref
            for ref in (ou.strip() for ou in org_units)
            if ref and ref not in self._stores and ref not in self._customers
        }
        if self.id_scheme == "CODE":  # the refs may be UIDs: learn their codes
            self._cache.lookup("id", pending)
        else:  # the refs may be codes: learn their UIDs (an unknown UID is simply unknown)
            self._cache.lookup("code", {ref for ref in pending if not is_uid(ref)})

    def resolve_uids(self, codes: Iterable[str]) -> dict[str, OrgUnitInfo]:
        """Org units by code, for the codes the server knows (batched and cached).

        Raises:
            ConfigError: no session was given.
            Dhis2Error: the look-up failed.
        """
        return self._require_cache().lookup("code", codes)

    def resolve_codes(self, uids: Iterable[str]) -> dict[str, OrgUnitInfo]:
        """Org units by UID, for the UIDs the server knows (batched and cached).

        Raises:
            ConfigError: no session was given.
            Dhis2Error: the look-up failed.
        """
        return self._require_cache().lookup("id", uids)

    @property
    def cached(self) -> int:
        """How many look-up answers the cache holds now (never more than ``max_cached``)."""
        return 0 if self._cache is None else len(self._cache)

    def refresh(self) -> None:
        """Forget cached look-ups, so metadata changed on the server is seen."""
        if self._cache is not None:
            self._cache.clear()

    def _match(self, index: Mapping[str, _P], org_unit: str) -> _P | None:
        ref = org_unit.strip()
        direct = index.get(ref)
        if direct is not None or not index or self._cache is None:
            return direct
        # Not a configured reference: it may be the same org unit in the other scheme. Events
        # carry org unit UIDs unless orgUnitIdScheme was honoured, so with codes configured a
        # UID is translated; with UIDs configured only a ref that cannot be a UID (a code) is
        # worth a look-up; an unknown UID is simply unknown.
        if self.id_scheme == "CODE":
            info = self._cache.lookup("id", (ref,)).get(ref)
            translated = info.code if info else None
        elif is_uid(ref):
            return None
        else:
            info = self._cache.lookup("code", (ref,)).get(ref)
            translated = info.uid if info else None
        return index.get(translated) if translated else None

    def _require_cache(self) -> _MetadataCache[OrgUnitInfo]:
        if self._cache is None:
            raise ConfigError(
                "translating org unit codes and UIDs needs a session: "
                "pass session= to OrgUnitResolver"
            )
        return self._cache


def _index(
    parties: Sequence[_P],
    ref_of: Callable[[Store | Customer], str | None],
    kind: str,
    field: str,
    problems: list[ConfigProblem],
) -> dict[str, _P]:
    index: dict[str, _P] = {}
    for party in parties:
        ref = ref_of(party)
        if ref is None:
            continue
        other = index.get(ref)
        if other is not None:
            problems.append(
                ConfigProblem(
                    field, ref, f"{kind} {other.code!r} and {party.code!r} share this org unit"
                )
            )
            continue
        index[ref] = party
    return index


# -- data set layouts ---------------------------------------------------------------------------

_Target = DataElementInfo | CategoryOptionComboInfo


@attrs.frozen
class LayoutCell:
    """Where one measure of one item sits in the data set.

    Attributes:
        item: the mSupply item.
        measure: the configured measure name (``stock_on_hand``).
        data_element: the data element holding the value.
        category_option_combo: the combo holding it; None for the default combo (templates).
    """

    item: Item
    measure: str
    data_element: DataElementInfo
    category_option_combo: CategoryOptionComboInfo | None


class LayoutResolver:
    """Places an item's measure in the data set, and finds the item and measure of a value.

    Built from the ``[data_set]`` section (:class:`~dhis2_lmis.config.DataSetLayout`) and the
    item resolver (whose ``item_field`` and ``id_scheme`` say where and how items keep their
    reference). Everything is resolved at the first use, in a few batched metadata look-ups
    (``categoryOptionCombos`` and ``dataElements`` with ``filter=...:in:[...]``, packed and
    TTL-cached like the other resolvers): measure values by UID (when UID-shaped), then code,
    then name; item references in the configured scheme; template renderings by code.
    :meth:`refresh` forgets them.

    Args:
        layout: the ``[data_set]`` section; it must name measures.
        items: the items and where their references live.
        session: the connection used for the look-ups.
        ttl_s: how long a look-up answer is trusted.
        clock: monotonic seconds, injectable for tests.
        max_cached: most look-up answers kept (hits and misses, by UID and by code); past it
            the expired and then the oldest are dropped.

    Raises:
        ConfigError: the layout names no measure.
    """

    def __init__(
        self,
        layout: DataSetLayout,
        items: ItemResolver,
        *,
        session: Dhis2Session,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = DEFAULT_MAX_CACHED,
    ) -> None:
        if not layout.configured:
            raise ConfigError("a data set layout needs measures: fill [data_set.measures]")
        self.layout = layout
        self.items = items
        self.session = session
        self._elements: _MetadataCache[DataElementInfo] = _MetadataCache(
            session,
            collection=DATA_ELEMENTS,
            fields=LAYOUT_DATA_ELEMENT_FIELDS,
            parse=parse_data_element,
            ttl_s=ttl_s,
            clock=clock,
            max_cached=max_cached,
        )
        self._combos: _MetadataCache[CategoryOptionComboInfo] = _MetadataCache(
            session,
            collection=CATEGORY_OPTION_COMBOS,
            fields=CATEGORY_OPTION_COMBO_FIELDS,
            parse=parse_category_option_combo,
            ttl_s=ttl_s,
            clock=clock,
            max_cached=max_cached,
        )
        self._resolved: _Resolved | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LayoutResolver(item_is={self.layout.item_is!r}, "
            f"measures={tuple(self.layout.measures)!r})"
        )

    @property
    def measures(self) -> tuple[str, ...]:
        """The configured measure names, in the order of the configuration."""
        return tuple(self.layout.measures)

    def refresh(self) -> None:
        """Forget what was resolved, so metadata changed on the server is seen."""
        with self._lock:
            self._resolved = None
        self._elements.clear()
        self._combos.clear()

    # -- resolution ----------------------------------------------------------------------------

    def _state(self) -> _Resolved:
        with self._lock:
            if self._resolved is None:
                self._resolved = self._resolve()
            return self._resolved

    def _resolve(self) -> _Resolved:
        layout = self.layout
        plain = {m: v.strip() for m, v in layout.measures.items() if not layout.is_template(m)}
        measures: dict[str, _Target] = dict(
            _by_uid_code_or_name(self._combos, plain)
            if layout.item_is == "data_element"
            else _by_uid_code_or_name(self._elements, plain)
        )
        refs, targets, rendered, templates = self._resolve_items(self.items.items)
        log.debug(
            "data set layout: %d of %d measures, %d of %d item references, %d of %d template "
            "data elements resolved",
            len(measures),
            len(plain),
            sum(v is not None for v in targets.values()),
            len(targets),
            sum(v is not None for v in templates.values()),
            len(templates),
        )
        return _Resolved(
            layout.item_is,
            refs=refs,
            measures=measures,
            items=targets,
            rendered=rendered,
            templates=templates,
        )

    def _resolve_items(
        self, items: Iterable[Item]
    ) -> tuple[
        dict[Item, str],
        dict[Item, _Target | None],
        dict[tuple[Item, str], str],
        dict[tuple[Item, str], DataElementInfo | None],
    ]:
        """Items' references, what they name, their template codes and what those name, in
        one batched look-up per kind."""
        layout = self.layout
        refs = {item: ref for item in items if (ref := self.items.dhis2_ref(item))}
        targets: dict[Item, _Target | None] = {}
        if layout.item_is == "category_option_combo" or not all(
            map(layout.is_template, layout.measures)
        ):
            cache: _MetadataCache[DataElementInfo] | _MetadataCache[CategoryOptionComboInfo]
            cache = self._elements if layout.item_is == "data_element" else self._combos
            prop: _Property = "code" if self.items.id_scheme == "CODE" else "id"
            found = cache.lookup(prop, refs.values())
            targets = {item: found.get(ref) for item, ref in refs.items()}
        rendered = {
            (item, m): layout.measures[m].strip().replace(TEMPLATE_FIELD, ref)
            for item, ref in refs.items()
            for m in layout.measures
            if layout.is_template(m)
        }
        codes = self._elements.lookup("code", rendered.values()) if rendered else {}
        templates = {key: codes.get(code) for key, code in rendered.items()}
        return refs, targets, rendered, templates

    def _state_with(self, item: Item) -> _Resolved:
        """The resolved state, extended by an item the resolver was not given (pushes may
        name any item; reading back knows only the given ones)."""
        state = self._state()
        if item in state.refs or self.items.dhis2_ref(item) is None:
            return state
        refs, targets, rendered, templates = self._resolve_items((item,))
        with self._lock:
            state.refs.update(refs)
            state.items.update(targets)
            state.rendered.update(rendered)
            state.templates.update(templates)
        return state

    # -- pushing -------------------------------------------------------------------------------

    def cell(self, item: Item, measure: str) -> LayoutCell:
        """The data element and combo of ``item``'s ``measure``.

        Raises:
            ConfigError: ``measure`` is not a configured measure name.
            UnknownReferenceError: the item has no reference, or its reference, the measure's
                value or the rendered template names nothing on the server (the message says
                which).
            Dhis2Error: a look-up failed.
        """
        if measure not in self.layout.measures:
            raise ConfigError(
                f"unknown measure {measure!r}: [data_set.measures] names "
                f"{', '.join(map(repr, self.layout.measures))}"
            )
        state = self._state_with(item)
        if item not in state.refs:
            raise UnknownReferenceError(f"its {self.items.item_field} is empty")
        if self.layout.is_template(measure):
            element = state.templates.get((item, measure))
            if element is None:
                raise UnknownReferenceError(
                    f"no data element has code {state.rendered[(item, measure)]} (measure "
                    f"{measure} = {self.layout.measures[measure]!r})"
                )
            return LayoutCell(item, measure, element, None)
        target = state.measures.get(measure)
        if target is None:
            raise UnknownReferenceError(self.describe_measure(measure))
        own = state.items.get(item)
        if own is None:
            raise UnknownReferenceError(
                f"its {self.items.item_field} {state.refs[item]} names no "
                f"{_kind(self.layout.item_is)} {self.items.id_scheme.lower()} on the server"
            )
        if isinstance(target, CategoryOptionComboInfo):
            assert isinstance(own, DataElementInfo)  # item_is = "data_element"
            return LayoutCell(item, measure, own, target)
        assert isinstance(own, CategoryOptionComboInfo)  # item_is = "category_option_combo"
        return LayoutCell(item, measure, target, own)

    def describe_measure(self, measure: str) -> str:
        """Why a measure's value resolved to nothing, worded for a finding or an error."""
        other = "category option combo" if self.layout.item_is == "data_element" else "data element"
        return (
            f"measure {measure} = {self.layout.measures[measure]!r} matches no {other} on the "
            "server by UID, code or name"
        )

    def measure_target(self, measure: str) -> DataElementInfo | CategoryOptionComboInfo | None:
        """What a (non-template) measure resolved to: a combo, or a data element."""
        return self._state().measures.get(measure)

    def item_target(self, item: Item) -> DataElementInfo | CategoryOptionComboInfo | None:
        """What an item's reference resolved to (data element or combo, per ``item_is``)."""
        return self._state().items.get(item)

    def rendered(self, item: Item, measure: str) -> tuple[str, DataElementInfo | None] | None:
        """A template measure's code for ``item`` and the data element it names (or None)."""
        state = self._state()
        code = state.rendered.get((item, measure))
        return None if code is None else (code, state.templates.get((item, measure)))

    # -- reading -------------------------------------------------------------------------------

    def match(self, data_element: str, combo: str | None) -> tuple[Item | None, str | None]:
        """The item and measure of a data value, given as DHIS2 sent it (UID or code each).

        Either may be None: a value of an item's data element under a combo that is no
        measure keeps its item; a measure's value under a combo no item has keeps its measure.

        Raises:
            Dhis2Error: a look-up failed (only on the first use).
        """
        index = self._state().index
        hit = index.cells.get((data_element, combo)) or index.cells.get((data_element, None))
        if hit is not None:
            return hit
        if self.layout.item_is == "data_element":
            return index.items.get(data_element), None
        return index.items.get(combo or ""), index.measures.get(data_element)


def _kind(item_is: str) -> str:
    return "data element" if item_is == "data_element" else "category option combo"


_I = TypeVar("_I", DataElementInfo, CategoryOptionComboInfo)


def _by_uid_code_or_name(cache: _MetadataCache[_I], values: Mapping[str, str]) -> dict[str, _I]:
    """Resolve each value by UID (when UID-shaped), else code, else name: at most three
    batched look-ups for all of them."""
    found: dict[str, _I] = {}
    pending = dict(values)
    props: tuple[_Property, ...] = ("id", "code", "name")
    for prop in props:
        if not pending:
            break
        keys = [v for v in pending.values() if prop != "id" or is_uid(v)]
        answers = cache.lookup(prop, keys) if keys else {}
        for key, value in list(pending.items()):
            if value in answers:
                found[key] = answers[value]
                del pending[key]
    return found


def _keys(obj: DataElementInfo | CategoryOptionComboInfo) -> tuple[str, ...]:
    return (obj.uid,) if not obj.code or obj.code == obj.uid else (obj.uid, obj.code)


@attrs.frozen
class _Index:
    """Reverse look-ups for reading: by (data element, combo) in either scheme."""

    cells: dict[tuple[str, str | None], tuple[Item, str]]
    items: dict[str, Item]
    measures: dict[str, str]


class _Resolved:
    """Everything a layout resolved, and the reverse index built from it."""

    def __init__(
        self,
        item_is: str,
        *,
        refs: dict[Item, str],
        measures: dict[str, _Target],
        items: dict[Item, _Target | None],
        rendered: dict[tuple[Item, str], str],
        templates: dict[tuple[Item, str], DataElementInfo | None],
    ) -> None:
        self.refs = refs
        self.measures = measures
        self.items = items
        self.rendered = rendered
        self.templates = templates
        cells: dict[tuple[str, str | None], tuple[Item, str]] = {}
        for (item, measure), element in templates.items():
            if element is not None:
                cells.update(((key, None), (item, measure)) for key in _keys(element))
        by_item = {key: item for item, t in items.items() if t is not None for key in _keys(t)}
        by_measure = {key: m for m, t in measures.items() for key in _keys(t)}
        if item_is == "data_element":
            for item, own in items.items():
                if own is None:
                    continue
                for measure, combo in measures.items():
                    for de in _keys(own):
                        cells.update(((de, cc), (item, measure)) for cc in _keys(combo))
        self.index = _Index(cells, by_item, by_measure)
