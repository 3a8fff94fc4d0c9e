"""Items, stores and customers, their loaders, and the resolvers that meet DHIS2 metadata."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import attrs
import pytest

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.session import MAX_URL_LENGTH, Dhis2Session
from dhis2_lmis.errors import ConfigError
from dhis2_lmis.lmis.models import Customer, Item, Store
from dhis2_lmis.lmis.references import (
    ITEM_FIELDS,
    DataElementInfo,
    ItemResolver,
    OrgUnitResolver,
    load_customers,
    load_items,
    load_stores,
)
from dhis2_lmis.testing import FakeDhis2

# -- records ----------------------------------------------------------------------------------


def test_item_defaults_are_empty_and_pushed() -> None:
    item = Item("AMX250", "Amoxicillin 250mg")
    assert item.universal_code is None
    assert dict(item.custom_fields) == {}
    assert item.include_in_dhis2_push is True


def test_item_custom_fields_are_frozen_and_hashable() -> None:
    fields = {"user_field_2": "DE_AMX"}
    item = Item("AMX250", "Amoxicillin", custom_fields=fields)
    fields["user_field_2"] = "changed"
    assert item.custom_fields["user_field_2"] == "DE_AMX"
    assert not hasattr(item.custom_fields, "__setitem__")
    same = Item("AMX250", "Amoxicillin", custom_fields={"user_field_2": "DE_AMX"})
    assert hash(item) == hash(same)
    assert item == same
    assert {item, same} == {item}


def test_custom_fields_compare_equal_to_a_plain_dict() -> None:
    store = Store("S1", "Central", {"Dhis2Code": "OU1"})
    assert store.custom_fields == {"Dhis2Code": "OU1"}


def test_records_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Customer("C1", "Clinic").name = "x"  # type: ignore[misc]


# -- loaders ----------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_items_from_csv_reads_known_and_custom_columns(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "items.csv",
        "code,name,universal_code,include_in_dhis2_push,user_field_2,Colour\n"
        "AMX250,Amoxicillin 250mg,UC1,yes,DE_AMX,red\n"
        "PCM500,Paracetamol 500mg,,0,,\n",
    )
    items = load_items(path)
    assert items == (
        Item("AMX250", "Amoxicillin 250mg", "UC1", {"user_field_2": "DE_AMX", "Colour": "red"}),
        Item("PCM500", "Paracetamol 500mg", None, {}, include_in_dhis2_push=False),
    )


def test_load_items_csv_accepts_excel_bom_and_header_case(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("\ufeffCode,Name,Universal_Code\nA,Alpha,U\n".encode())
    assert load_items(path) == (Item("A", "Alpha", "U"),)


def test_load_items_from_json_takes_nested_and_top_level_custom_fields(tmp_path: Path) -> None:
    rows = [
        {
            "code": "AMX250",
            "name": "Amoxicillin",
            "include_in_dhis2_push": False,
            "user_field_1": "X1",
            "custom_fields": {"user_field_6": "X6"},
        }
    ]
    path = _write(tmp_path, "items.json", json.dumps(rows))
    (item,) = load_items(path)
    assert dict(item.custom_fields) == {"user_field_1": "X1", "user_field_6": "X6"}
    assert item.include_in_dhis2_push is False


def test_load_stores_and_customers_from_open_files() -> None:
    stores = io.StringIO("code,name,Dhis2Code\nS1,Central,OU1\n")
    stores.name = "stores.csv"
    customers = io.StringIO(json.dumps([{"code": "C1", "name": "Clinic", "OrgUnit": "OU9"}]))
    assert load_stores(stores) == (Store("S1", "Central", {"Dhis2Code": "OU1"}),)
    assert load_customers(customers, format="json") == (
        Customer("C1", "Clinic", {"OrgUnit": "OU9"}),
    )


def test_load_items_bad_flag_names_file_row_and_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "items.csv", "code,name,include_in_dhis2_push\nA,Alpha,true\nB,Beta,maybe\n"
    )
    with pytest.raises(ConfigError) as info:
        load_items(path)
    (problem,) = info.value.problems
    assert problem.key == f"{path}, row 3, column include_in_dhis2_push"
    assert problem.value == "maybe"


def test_load_items_reports_every_bad_row_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "items.csv", "code,name\n,Nameless\nB,\nC,Gamma\nC,Again\n")
    with pytest.raises(ConfigError) as info:
        load_items(path)
    keys = [p.key for p in info.value.problems]
    assert keys == [
        f"{path}, row 2, column code",
        f"{path}, row 3, column name",
        f"{path}, row 5, column code",
    ]
    assert "duplicate code" in info.value.problems[2].reason


def test_load_items_json_non_text_value_names_row_and_column(tmp_path: Path) -> None:
    rows = [{"code": "A", "name": "Alpha"}, {"code": "B", "name": "Beta", "universal_code": [1]}]
    path = _write(tmp_path, "items.json", json.dumps(rows))
    with pytest.raises(ConfigError, match=r"items\.json, row 2, column universal_code"):
        load_items(path)


def test_load_items_json_nested_custom_field_error_names_the_field(tmp_path: Path) -> None:
    rows = [{"code": "A", "name": "Alpha", "custom_fields": {"user_field_3": {"x": 1}}}]
    path = _write(tmp_path, "items.json", json.dumps(rows))
    with pytest.raises(ConfigError, match=r"row 1, column custom_fields\.user_field_3"):
        load_items(path)


def test_load_items_rejects_unknown_suffix(tmp_path: Path) -> None:
    path = _write(tmp_path, "items.txt", "code,name\n")
    with pytest.raises(ConfigError, match="cannot tell CSV from JSON"):
        load_items(path)


def test_load_items_rejects_json_that_is_not_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "items.json", '{"code": "A"}')
    with pytest.raises(ConfigError, match="expected a JSON list"):
        load_items(path)


def test_load_items_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_items(tmp_path / "absent.csv")


# -- ItemResolver without a server -------------------------------------------------------------

AMX = Item(
    "AMX250",
    "Amoxicillin",
    universal_code="UC_AMX",
    custom_fields={f"user_field_{n}": f"F{n}_AMX" for n in (1, 2, 3, 6)},
)
PCM = Item("PCM500", "Paracetamol", universal_code="  ", include_in_dhis2_push=False)


@pytest.mark.parametrize("field", ITEM_FIELDS)
def test_dhis2_ref_reads_the_configured_item_field(field: str) -> None:
    resolver = ItemResolver([AMX], item_field=field)  # type: ignore[arg-type]
    expected = "UC_AMX" if field == "universal_code" else f"F{field[-1]}_AMX"
    assert resolver.dhis2_ref(AMX) == expected
    assert resolver.item_for(expected) is AMX


@pytest.mark.parametrize("field", ITEM_FIELDS)
def test_dhis2_ref_is_none_when_the_field_is_empty(field: str) -> None:
    resolver = ItemResolver([PCM], item_field=field)  # type: ignore[arg-type]
    assert resolver.dhis2_ref(PCM) is None


def test_item_for_unknown_ref_is_none() -> None:
    assert ItemResolver([AMX]).item_for("NOPE") is None


def test_push_items_keeps_only_items_marked_for_push() -> None:
    assert ItemResolver([AMX, PCM]).push_items() == (AMX,)


def test_two_items_with_one_reference_name_both_items() -> None:
    twin = Item("AMX500", "Amoxicillin 500", universal_code="UC_AMX")
    with pytest.raises(ConfigError) as info:
        ItemResolver([AMX, twin])
    assert "'AMX250'" in str(info.value)
    assert "'AMX500'" in str(info.value)


def test_unknown_item_field_is_named() -> None:
    with pytest.raises(ConfigError, match="user_field_4"):
        ItemResolver([AMX], item_field="user_field_4")  # type: ignore[arg-type]


def test_unknown_id_scheme_is_named() -> None:
    with pytest.raises(ConfigError, match="NAME"):
        ItemResolver([AMX], id_scheme="NAME")  # type: ignore[arg-type]


def test_describe_lookup_names_the_field() -> None:
    assert ItemResolver([]).describe_lookup("X") == "no item has universal code X"
    resolver = ItemResolver([], item_field="user_field_2")
    assert resolver.describe_lookup("X") == "no item has user_field_2 = X"


def test_same_scheme_data_element_needs_no_session() -> None:
    resolver = ItemResolver([AMX], id_scheme="CODE")
    assert resolver.item_for_data_element("UC_AMX", "CODE") is AMX


def test_translation_without_a_session_is_a_config_error() -> None:
    resolver = ItemResolver([AMX], id_scheme="CODE")
    with pytest.raises(ConfigError, match="needs a session"):
        resolver.item_for_data_element("deAmx000001", "UID")


# -- OrgUnitResolver without a server ---------------------------------------------------------

CENTRAL = Store("S1", "Central", {"Dhis2Code": "OuCentral01"})
UNMAPPED = Store("S2", "Side store", {"Dhis2Code": ""})
CLINIC = Customer("C1", "Clinic", {"OrgUnit": "OuClinic001"})


def test_org_unit_for_reads_store_and_customer_fields() -> None:
    resolver = OrgUnitResolver([CENTRAL], [CLINIC], name_field="OrgUnit")
    assert resolver.org_unit_for(CENTRAL) == "OuCentral01"
    assert resolver.org_unit_for(CLINIC) == "OuClinic001"
    assert resolver.store_for("OuCentral01") is CENTRAL
    assert resolver.customer_for("OuClinic001") is CLINIC


def test_store_with_empty_field_is_skipped() -> None:
    resolver = OrgUnitResolver([CENTRAL, UNMAPPED])
    assert resolver.org_unit_for(UNMAPPED) is None
    assert resolver.skipped_stores() == (UNMAPPED,)


def test_customers_are_unmapped_without_a_name_field() -> None:
    resolver = OrgUnitResolver((), [CLINIC])
    assert resolver.org_unit_for(CLINIC) is None
    assert resolver.customer_for("OuClinic001") is None
    assert "no name field" in resolver.describe_lookup("OuClinic001")


def test_describe_lookup_names_both_fields() -> None:
    resolver = OrgUnitResolver([CENTRAL], [CLINIC], name_field="OrgUnit")
    assert resolver.describe_lookup("X") == (
        "no store has Dhis2Code = X and no customer has OrgUnit = X"
    )


def test_two_stores_on_one_org_unit_name_both_stores() -> None:
    twin = Store("S9", "Twin", {"Dhis2Code": "OuCentral01"})
    with pytest.raises(ConfigError) as info:
        OrgUnitResolver([CENTRAL, twin])
    assert "'S1'" in str(info.value)
    assert "'S9'" in str(info.value)


def test_a_store_and_a_customer_may_share_an_org_unit() -> None:
    both = Customer("C2", "Central as customer", {"OrgUnit": "OuCentral01"})
    resolver = OrgUnitResolver([CENTRAL], [both], name_field="OrgUnit")
    assert resolver.customer_for("OuCentral01") is both


# -- against FakeDhis2 ------------------------------------------------------------------------


class Clock:
    """A settable monotonic clock, so TTL expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(fake_dhis2: FakeDhis2) -> FakeDhis2:
    """The plugin's fake, which also fails the test on any request it could not answer."""
    return fake_dhis2


@pytest.fixture
def session(fake: FakeDhis2) -> Iterator[Dhis2Session]:
    with Dhis2Session(fake.url, auth=BasicAuth("admin", "district")) as s:
        yield s


def _uid(n: int) -> str:
    return f"de{n:09d}"


def _seed_data_elements(fake: FakeDhis2, count: int) -> list[str]:
    codes = []
    for n in range(count):
        code = f"LMIS_SOH_ITEM_{n:05d}"
        fake.add_data_element(_uid(n), code, f"Item {n} stock on hand", value_type="INTEGER")
        codes.append(code)
    return codes


def _lookups(fake: FakeDhis2, collection: str) -> list[object]:
    return [r for r in fake.requests if r.path == f"/api/{collection}"]


def _sent_url_length(fake: FakeDhis2, request: object) -> int:
    query = urlencode(request.query, doseq=True)  # type: ignore[attr-defined]
    return len(f"{fake.url}{request.path}?{query}")  # type: ignore[attr-defined]


def test_resolve_uids_returns_data_element_info(fake: FakeDhis2, session: Dhis2Session) -> None:
    fake.add_data_element(
        "deAmx000001", "UC_AMX", "Amoxicillin SOH", value_type="NUMBER", zero_is_significant=True
    )
    resolver = ItemResolver([AMX], session=session)
    assert resolver.resolve_uids(["UC_AMX", "UNKNOWN"]) == {
        "UC_AMX": DataElementInfo("deAmx000001", "UC_AMX", "Amoxicillin SOH", "NUMBER", True)
    }
    (request,) = _lookups(fake, "dataElements")
    assert request.query["filter"] == ["code:in:[UC_AMX,UNKNOWN]"]
    assert request.query["pageSize"] == ["3"]  # one more than the keys: a single short page
    assert request.query["fields"] == ["id,code,name,valueType,zeroIsSignificant"]


def test_uid_for_and_code_for_share_one_cache(fake: FakeDhis2, session: Dhis2Session) -> None:
    fake.add_data_element("deAmx000001", "UC_AMX", "Amoxicillin SOH")
    resolver = ItemResolver([AMX], session=session)
    assert resolver.uid_for("UC_AMX") == "deAmx000001"
    assert resolver.code_for("deAmx000001") == "UC_AMX"
    assert len(_lookups(fake, "dataElements")) == 1


def test_resolve_codes_filters_by_id(fake: FakeDhis2, session: Dhis2Session) -> None:
    fake.add_data_element("deAmx000001", "UC_AMX", "Amoxicillin SOH")
    resolver = ItemResolver([AMX], id_scheme="CODE", session=session)
    assert resolver.resolve_codes(["deAmx000001"])["deAmx000001"].code == "UC_AMX"
    (request,) = _lookups(fake, "dataElements")
    assert request.query["filter"] == ["id:in:[deAmx000001]"]


@pytest.mark.parametrize("field", ITEM_FIELDS)
def test_event_uid_resolves_to_item_configured_by_code(
    fake: FakeDhis2, session: Dhis2Session, field: str
) -> None:
    ref = "UC_AMX" if field == "universal_code" else f"F{field[-1]}_AMX"
    fake.add_data_element("deAmx000001", ref, "Amoxicillin SOH")
    resolver = ItemResolver([AMX], item_field=field, id_scheme="CODE", session=session)  # type: ignore[arg-type]
    assert resolver.item_for_data_element("deAmx000001", "UID") is AMX


def test_event_code_resolves_to_item_configured_by_uid(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    fake.add_data_element("deAmx000001", "DE_AMX_CODE", "Amoxicillin SOH")
    item = Item("AMX250", "Amoxicillin", custom_fields={"user_field_3": "deAmx000001"})
    resolver = ItemResolver([item], item_field="user_field_3", id_scheme="UID", session=session)
    assert resolver.item_for_data_element("DE_AMX_CODE", "CODE") is item
    assert resolver.item_for_data_element("deAmx000001", "UID") is item
    assert len(_lookups(fake, "dataElements")) == 1


@pytest.mark.parametrize("version", ["2.36", "2.40", "2.41", "2.42"])
def test_translation_works_on_each_dialect(
    fake_dhis2_factory: Callable[..., FakeDhis2], version: str
) -> None:
    server = fake_dhis2_factory(version)
    server.add_data_element("deAmx000001", "UC_AMX", "Amoxicillin SOH")
    server.add_org_unit("OuCentral01", "FAC_CENTRAL", "Central")
    store = Store("S1", "Central", {"Dhis2Code": "FAC_CENTRAL"})
    with Dhis2Session(server.url, auth=BasicAuth("admin", "district")) as s:
        items = ItemResolver([AMX], session=s)
        org_units = OrgUnitResolver([store], id_scheme="CODE", session=s)
        assert items.item_for_data_element("deAmx000001", "UID") is AMX
        assert org_units.store_for("OuCentral01") is store


def test_unknown_event_data_element_gives_none(fake: FakeDhis2, session: Dhis2Session) -> None:
    resolver = ItemResolver([AMX], session=session)
    assert resolver.item_for_data_element("deMissing01", "UID") is None


def test_resolving_5000_codes_uses_the_fewest_requests_under_6kb(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    codes = _seed_data_elements(fake, 5000)
    resolver = ItemResolver([], session=session)
    found = resolver.resolve_uids(codes)
    assert len(found) == 5000
    requests = _lookups(fake, "dataElements")
    lengths = [_sent_url_length(fake, r) for r in requests]
    assert max(lengths) <= MAX_URL_LENGTH
    # Every code costs its length plus an encoded comma (3 bytes), less one comma per request.
    first = requests[0].query
    empty = {"filter": "code:in:[]", "fields": first["fields"][0], "page": "1"}
    empty["pageSize"] = first["pageSize"][0]
    fixed = len(f"{fake.url}/api/dataElements?{urlencode(empty)}")
    capacity = MAX_URL_LENGTH - fixed + 3
    minimum = -(-sum(len(c) + 3 for c in codes) // capacity)
    assert len(requests) == minimum


def test_second_resolution_sends_nothing(fake: FakeDhis2, session: Dhis2Session) -> None:
    codes = _seed_data_elements(fake, 50)
    resolver = ItemResolver([], session=session)
    resolver.resolve_uids([*codes, "NOT_THERE"])
    fake.clear_requests()
    again = resolver.resolve_uids([*codes, "NOT_THERE"])
    assert len(again) == 50
    assert _lookups(fake, "dataElements") == []


def test_only_uncached_codes_are_fetched(fake: FakeDhis2, session: Dhis2Session) -> None:
    codes = _seed_data_elements(fake, 3)
    resolver = ItemResolver([], session=session)
    resolver.resolve_uids(codes[:2])
    fake.clear_requests()
    resolver.resolve_uids(codes)
    (request,) = _lookups(fake, "dataElements")
    assert request.query["filter"] == [f"code:in:[{codes[2]}]"]


def test_refresh_refetches(fake: FakeDhis2, session: Dhis2Session) -> None:
    codes = _seed_data_elements(fake, 3)
    resolver = ItemResolver([], session=session)
    resolver.resolve_uids(codes)
    resolver.refresh()
    resolver.resolve_uids(codes)
    assert len(_lookups(fake, "dataElements")) == 2


def test_entries_expire_after_the_ttl(fake: FakeDhis2, session: Dhis2Session) -> None:
    codes = _seed_data_elements(fake, 3)
    clock = Clock()
    resolver = ItemResolver([], session=session, ttl_s=60.0, clock=clock)
    resolver.resolve_uids(codes)
    clock.now += 59.0
    resolver.resolve_uids(codes)
    assert len(_lookups(fake, "dataElements")) == 1
    clock.now += 1.0
    resolver.resolve_uids(codes)
    assert len(_lookups(fake, "dataElements")) == 2


def test_a_remembered_miss_expires_too(fake: FakeDhis2, session: Dhis2Session) -> None:
    clock = Clock()
    resolver = ItemResolver([], session=session, ttl_s=60.0, clock=clock)
    assert resolver.uid_for("LATE") is None
    fake.add_data_element("deLate00001", "LATE", "Added later")
    assert resolver.uid_for("LATE") is None
    clock.now += 60.0
    assert resolver.uid_for("LATE") == "deLate00001"


def _uids(infos: dict[str, DataElementInfo]) -> dict[str, str]:
    return {code: info.uid for code, info in infos.items()}


def test_the_cache_never_holds_more_than_max_cached_and_refetches_what_it_dropped(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    codes = _seed_data_elements(fake, 30)
    resolver = ItemResolver([], session=session, max_cached=10)  # 5 answers: by UID and code
    for start in range(0, 30, 5):
        part = codes[start : start + 5]
        assert _uids(resolver.resolve_uids(part)) == {c: _uid(int(c[-5:])) for c in part}
        assert resolver.cached <= 10
    fake.clear_requests()
    assert _uids(resolver.resolve_uids(codes[-5:])) == {
        c: _uid(25 + n) for n, c in enumerate(codes[-5:])
    }
    assert _lookups(fake, "dataElements") == []  # the newest answers are kept
    assert resolver.uid_for(codes[0]) == _uid(0)
    (request,) = _lookups(fake, "dataElements")  # the oldest was dropped: asked again, once
    assert request.query["filter"] == [f"code:in:[{codes[0]}]"]
    # one look-up of more keys than the cache holds still answers every one
    assert _uids(resolver.resolve_uids(codes)) == {c: _uid(n) for n, c in enumerate(codes)}
    assert resolver.cached <= 10


def test_remembered_misses_are_bounded_too(fake: FakeDhis2, session: Dhis2Session) -> None:
    resolver = OrgUnitResolver(session=session, id_scheme="CODE", max_cached=8)
    for n in range(40):
        assert resolver.resolve_uids([f"NO_SUCH_{n}"]) == {}
        assert resolver.cached <= 8


def test_past_the_limit_expired_entries_go_before_fresh_ones(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    codes = _seed_data_elements(fake, 3)
    clock = Clock()
    resolver = ItemResolver([], session=session, ttl_s=60.0, clock=clock, max_cached=4)
    resolver.resolve_uids(codes[:2])
    assert resolver.cached == 4
    clock.now += 60.0
    assert _uids(resolver.resolve_uids(codes[2:])) == {codes[2]: _uid(2)}
    assert resolver.cached == 2  # both expired answers went, not just the two oldest


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_a_cache_limit_below_one_is_a_config_error(session: Dhis2Session, limit: object) -> None:
    with pytest.raises(ConfigError, match="max_cached"):
        ItemResolver([], session=session, max_cached=limit)  # type: ignore[arg-type]


def test_a_code_with_a_comma_is_looked_up_alone(fake: FakeDhis2, session: Dhis2Session) -> None:
    fake.add_data_element("deComma0001", "A,B", "Comma in code")
    resolver = ItemResolver([], session=session)
    assert resolver.uid_for("A,B") == "deComma0001"
    (request,) = _lookups(fake, "dataElements")
    assert request.query["filter"] == ["code:eq:A,B"]


def test_event_org_unit_uid_finds_store_configured_by_code(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    fake.add_org_unit("OuCentral01", "FAC_CENTRAL", "Central")
    store = Store("S1", "Central", {"Dhis2Code": "FAC_CENTRAL"})
    resolver = OrgUnitResolver([store], id_scheme="CODE", session=session)
    assert resolver.store_for("OuCentral01") is store
    assert resolver.store_for("FAC_CENTRAL") is store
    (request,) = _lookups(fake, "organisationUnits")
    assert request.query["filter"] == ["id:in:[OuCentral01]"]
    assert request.query["fields"] == ["id,code,name,path,level"]


def test_event_org_unit_code_finds_customer_configured_by_uid(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    fake.add_org_unit("OuRoot00001", "ROOT", "Country")
    fake.add_org_unit("OuClinic001", "FAC_CLINIC", "Clinic", parent="OuRoot00001")
    resolver = OrgUnitResolver((), [CLINIC], name_field="OrgUnit", session=session)
    assert resolver.customer_for("FAC_CLINIC") is CLINIC
    info = resolver.resolve_codes(["OuClinic001"])["OuClinic001"]
    assert (info.path, info.level) == ("/OuRoot00001/OuClinic001", 2)
    assert len(_lookups(fake, "organisationUnits")) == 1


def test_org_unit_lookups_are_batched_and_cached(fake: FakeDhis2, session: Dhis2Session) -> None:
    for n in range(20):
        fake.add_org_unit(f"Ou{n:09d}", f"FAC{n}", f"Facility {n}")
    resolver = OrgUnitResolver([CENTRAL], session=session)
    resolver.resolve_uids([f"FAC{n}" for n in range(20)])
    resolver.resolve_codes([f"Ou{n:09d}" for n in range(20)])
    assert len(_lookups(fake, "organisationUnits")) == 1
    resolver.refresh()
    resolver.resolve_codes([f"Ou{n:09d}" for n in range(20)])
    assert len(_lookups(fake, "organisationUnits")) == 2


# -- the one id-scheme translation: prefetch a page, then look up in either scheme -------------


def test_prefetch_translates_a_page_of_uids_in_one_request(
    fake: FakeDhis2, session: Dhis2Session
) -> None:
    codes = _seed_data_elements(fake, 30)
    items = [Item(f"I{n}", f"Item {n}", universal_code=code) for n, code in enumerate(codes)]
    resolver = ItemResolver(items, id_scheme="CODE", session=session)
    page = [_uid(n) for n in range(30)] + [codes[0], "deUnknown01"]

    resolver.prefetch(page)
    assert len(_lookups(fake, "dataElements")) == 1
    fake.clear_requests()

    found = [resolver.item_for_ref(ref) for ref in page]
    assert found[:30] == items  # UIDs sent where codes were asked for
    assert found[30] is items[0]  # a code in the configured scheme
    assert found[31] is None
    assert _lookups(fake, "dataElements") == []


def test_without_a_session_refs_in_the_other_scheme_have_no_item_and_nothing_raises() -> None:
    resolver = ItemResolver([AMX], id_scheme="CODE")
    resolver.prefetch(["deAmx000001"])
    assert resolver.item_for_ref("deAmx000001") is None
    assert resolver.item_for_ref("UC_AMX") is AMX
