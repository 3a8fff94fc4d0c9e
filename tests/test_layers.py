"""The layout is the architecture: layers import downwards only, and nothing imports in a circle.

Read from the source with ``ast`` (every import counts: module level, inside functions and
under ``TYPE_CHECKING``), so a circle that happens to work at run time still fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import typing
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dhis2_lmis"

# Which part of the package each layer may import (by module-name prefix); lower layers first.
ALLOWED: dict[str, tuple[str, ...]] = {
    "dhis2_lmis.errors": (),
    "dhis2_lmis._version": (),
    "dhis2_lmis.dhis2": ("dhis2_lmis.dhis2", "dhis2_lmis.errors", "dhis2_lmis._version"),
    "dhis2_lmis.config": ("dhis2_lmis.dhis2", "dhis2_lmis.errors"),
    "dhis2_lmis.lmis": (
        "dhis2_lmis.lmis",
        "dhis2_lmis.dhis2",
        "dhis2_lmis.config",
        "dhis2_lmis.errors",
    ),
    "dhis2_lmis.client": (
        "dhis2_lmis.lmis",
        "dhis2_lmis.dhis2",
        "dhis2_lmis.config",
        "dhis2_lmis.errors",
    ),
    # the fake imports nothing of the library's behaviour; smtp.py raises its MissingExtraError
    "dhis2_lmis.testing": ("dhis2_lmis.testing", "dhis2_lmis.errors"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The package modules ``name`` imports, wherever in the file the import statement sits."""
    path = MODULES[name]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_sees_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_in_a_circle() -> None:
    assert _cycles(GRAPH) == []


def test_the_layout_has_the_three_layers() -> None:
    for layer in ("dhis2_lmis.dhis2", "dhis2_lmis.lmis", "dhis2_lmis.run", "dhis2_lmis.testing"):
        assert any(m.startswith(f"{layer}.") for m in MODULES), layer


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_from_its_own_layer_or_below(name: str) -> None:
    rule = next(
        (
            allowed
            for prefix, allowed in ALLOWED.items()
            if name == prefix or name.startswith(f"{prefix}.")
        ),
        None,
    )
    if rule is None:  # the top: the package's __init__, __main__ and run/ may import anything
        return
    upward = sorted(
        m for m in GRAPH[name] if not any(m == p or m.startswith(f"{p}.") for p in rule)
    )
    assert upward == [], f"{name} imports from a layer above it"


# -- one home for each kind of DHIS2 knowledge ---------------------------------------------------

LIBRARY = {
    name: path.read_text(encoding="utf-8")
    for name, path in MODULES.items()
    if not name.startswith("dhis2_lmis.testing")
}
DIALECT_AND_WIRE = {"dhis2_lmis.dhis2.versions", "dhis2_lmis.dhis2.convert"}
WIRE_NAMES = re.compile(
    r"\b(occurredAt|eventDate|trackedEntityInstances?|ouMode|orgUnitMode|lastUpdatedStartDate)\b"
    r"|[\"']instances[\"']"
)
VERSION_TEST = re.compile(r"\bversion\s*[<>]=?\s*\(|\.minor\b|\bversion\.parts\b")


def test_the_checks_see_what_they_look_for() -> None:
    assert WIRE_NAMES.search('body.get("instances")') and WIRE_NAMES.search("ouMode")
    assert not WIRE_NAMES.search("DHIS2 instances on other calendars")
    assert VERSION_TEST.search("if version >= (2, 42):") and VERSION_TEST.search("v.minor")


@pytest.mark.parametrize("name", sorted(set(LIBRARY) - DIALECT_AND_WIRE))
def test_only_the_dialect_and_the_wire_layer_spell_per_version_names(name: str) -> None:
    assert WIRE_NAMES.findall(LIBRARY[name]) == []


@pytest.mark.parametrize("name", sorted(set(LIBRARY) - {"dhis2_lmis.dhis2.versions"}))
def test_only_the_dialect_compares_server_versions(name: str) -> None:
    assert VERSION_TEST.findall(LIBRARY[name]) == []


def test_one_clock_reads_the_wall_time() -> None:
    readers = sorted(
        n for n, text in LIBRARY.items() if re.search(r"datetime\.now\(|\.utcnow\(", text)
    )
    assert readers == ["dhis2_lmis.dhis2._clock"]


def test_one_url_length_budget() -> None:
    owners = sorted(n for n, text in LIBRARY.items() if re.search(r"^MAX_URL\w* = ", text, re.M))
    assert owners == ["dhis2_lmis.dhis2.session"]
    encoders = sorted(n for n, text in LIBRARY.items() if "urlencode(" in text)
    assert encoders == ["dhis2_lmis.dhis2.session"]


def test_one_id_scheme_translation_owned_by_the_resolvers() -> None:
    translators = sorted(
        n for n, text in LIBRARY.items() if re.search(r"\.lookup\(\"(id|code)\"", text)
    )
    assert translators == ["dhis2_lmis.lmis.references"]
    uid_tests = sorted(n for n, text in LIBRARY.items() if re.search(r"\bis_uid\(|isalnum\(", text))
    assert set(uid_tests) <= {
        "dhis2_lmis.dhis2._uids",
        "dhis2_lmis.config",
        "dhis2_lmis.lmis.references",
        "dhis2_lmis.lmis.checks",
    }


# The data value set format (/api/dataValueSets) has one home, dhis2/datavaluesets.py: no module
# above the protocol spells one of its keys or parameters. "period", "value" and "comment" are
# not listed: they are also the library's own words (the push-values CSV columns, ROW_COLUMNS).
DATA_VALUE_SET_NAMES = frozenset(
    {
        "dataValueSets",
        "dataValues",
        "dataSet",
        "dataElement",
        "categoryOptionCombo",
        "attributeOptionCombo",
        "orgUnit",
        "completeDate",
        "lastUpdated",
        "dryRun",
        "importStrategy",
        "dataElementIdScheme",
        "orgUnitIdScheme",
        "categoryOptionComboIdScheme",
        "strictPeriods",
        "strictCategoryOptionCombos",
    }
)
ABOVE_THE_PROTOCOL = sorted(n for n in LIBRARY if not n.startswith("dhis2_lmis.dhis2."))


def _string_literals(source: str) -> list[str]:
    """Every string constant of a module (f-string parts too) but documentation: a string that
    stands alone as a statement (a docstring) may name DHIS2's keys."""
    nodes = list(ast.walk(ast.parse(source)))
    documentation = {
        id(node.value)
        for node in nodes
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in nodes
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in documentation
    ]


def test_the_literal_check_sees_keys_in_code_and_not_in_documentation() -> None:
    source = (
        '"""Reads dataValues."""\n'
        "def f(row):\n"
        '    """The dataElement of a row."""\n'
        '    return row.get("dataElement"), {"orgUnit": 1}, f"{row}", "see the dataSet"\n'
    )
    spelled = [s for s in _string_literals(source) if s in DATA_VALUE_SET_NAMES]
    assert spelled == ["dataElement", "orgUnit"]


@pytest.mark.parametrize("name", ABOVE_THE_PROTOCOL)
def test_only_the_protocol_spells_the_data_value_set_format(name: str) -> None:
    spelled = [s for s in _string_literals(LIBRARY[name]) if s in DATA_VALUE_SET_NAMES]
    assert spelled == [], f"{name} spells DHIS2's data value set names: use dhis2.datavaluesets"


# DHIS2 writes its JSON keys and query parameters in camelCase; the library's own names are
# snake_case. So a camelCase string in code above the protocol is a DHIS2 name out of place.
_CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)+")


@pytest.mark.parametrize("name", ABOVE_THE_PROTOCOL)
def test_no_dhis2_name_is_spelled_above_the_protocol(name: str) -> None:
    spelled = [s for s in _string_literals(LIBRARY[name]) if _CAMEL_CASE.fullmatch(s)]
    assert spelled == [], f"{name} spells DHIS2 names {spelled}: take them from dhis2/"


# -- the public surface ---------------------------------------------------------------------------


def _named_types(hint: object) -> set[str]:
    """The classes a return annotation names, through Iterator[...], list[...], X | None."""
    args = typing.get_args(hint)
    if args:
        return {name for arg in args for name in _named_types(arg)}
    module = getattr(hint, "__module__", "")
    name = getattr(hint, "__name__", None)
    return {name} if name and module.startswith("dhis2_lmis") else set()


def _return_hint(function: object) -> object:
    """The evaluated return annotation; None when it names an optional extra's type (pandas)."""
    annotation = inspect.signature(function).return_annotation  # type: ignore[arg-type]
    if not isinstance(annotation, str):
        return annotation
    namespace = vars(sys.modules[function.__module__])  # type: ignore[attr-defined]
    try:
        return eval(annotation, dict(namespace))
    except NameError:
        return None


def test_the_public_surface_is_small_and_names_every_returned_type() -> None:
    import dhis2_lmis  # noqa: PLC0415 - the package under test

    exported = set(dhis2_lmis.__all__)
    assert len(exported) <= 75
    assert all(hasattr(dhis2_lmis, name) for name in exported)
    returned: dict[str, set[str]] = {}
    for name in sorted(exported):
        obj = getattr(dhis2_lmis, name)
        if inspect.isfunction(obj):
            returned[name] = _named_types(_return_hint(obj))
    for method_name, method in inspect.getmembers(dhis2_lmis.Dhis2Lmis, inspect.isfunction):
        if not method_name.startswith("_"):
            returned[f"Dhis2Lmis.{method_name}"] = _named_types(_return_hint(method))
    missing = {where: types - exported for where, types in returned.items() if types - exported}
    assert missing == {}


def test_exceptions_are_named_error_and_only_exceptions_are() -> None:
    import dhis2_lmis  # noqa: PLC0415

    for name in dhis2_lmis.__all__:
        obj = getattr(dhis2_lmis, name)
        is_exception = isinstance(obj, type) and issubclass(obj, BaseException)
        assert is_exception == name.endswith("Error"), name


def test_fetch_and_pull_options_are_keyword_only_and_named_alike() -> None:
    import dhis2_lmis  # noqa: PLC0415

    readers = {
        name: inspect.signature(function)
        for name, function in inspect.getmembers(dhis2_lmis.Dhis2Lmis, inspect.isfunction)
        if name.startswith("fetch_") or name == "pull"
    }
    for name, signature in readers.items():
        params = list(signature.parameters.values())[1:]  # self
        positional = [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
        assert positional in ([], ["program"], ["period"]), name
        assert "org_unit" in signature.parameters and "progress" in signature.parameters, name
    timed = {n for n, s in readers.items() if "since" in s.parameters}
    assert timed == set(readers) - {"fetch_stock_on_hand"}


def test_fields_strings_live_with_the_protocol() -> None:
    spelled = sorted(
        n
        for n, text in LIBRARY.items()
        if not n.startswith("dhis2_lmis.dhis2.") and re.search(r"[\"']fields[\"']: [\"']", text)
    )
    assert spelled == []
