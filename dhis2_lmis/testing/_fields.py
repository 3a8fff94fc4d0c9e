"""A small implementation of DHIS2's ``fields`` and ``filter`` query languages.

``fields``: comma list, nesting ``a[b,c]``, ``*``/``:all``, ``!name`` exclusions and the
``:identifiable``/``:nameable``/``:owner`` presets; unknown fields are omitted, as DHIS2 does.
Objects are plain dicts whose references to other metadata are ``Ref`` markers: a bare
reference renders as ``{"id": ...}`` and a nested selection expands the referenced object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FieldSpec", "Ref", "apply_fields", "match_filter", "parse_fields", "split_top"]

PRESETS: dict[str, tuple[str, ...]] = {
    ":identifiable": ("id", "name", "code", "created", "lastUpdated"),
    ":nameable": ("id", "name", "shortName", "description", "code", "created", "lastUpdated"),
}


@dataclass(frozen=True)
class Ref:
    """A reference to another metadata object, resolved lazily."""

    collection: str
    uid: str


Resolver = Callable[[Ref], "dict[str, Any] | None"]


@dataclass
class FieldSpec:
    """A parsed ``fields`` expression."""

    include_all: bool = False
    fields: dict[str, FieldSpec | None] = field(default_factory=dict)
    exclude: set[str] = field(default_factory=set)


def split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_fields(text: str) -> FieldSpec:
    """Parse a ``fields`` expression (several ``fields`` params may be joined with commas)."""
    spec = FieldSpec()
    for token in split_top(text):
        if token in ("*", ":all", ":owner"):
            spec.include_all = True
        elif token.startswith("!"):
            spec.exclude.add(token[1:])
        elif token in PRESETS:
            for name in PRESETS[token]:
                spec.fields.setdefault(name, None)
        elif "[" in token and token.endswith("]"):
            name, _, inner = token.partition("[")
            spec.fields[name.strip()] = parse_fields(inner[:-1])
        elif "(" in token and token.endswith(")"):
            name, _, inner = token.partition("(")
            spec.fields[name.strip()] = parse_fields(inner[:-1])
        else:
            spec.fields.setdefault(token.split("::")[0].split("~")[0], None)
    return spec


def apply_fields(
    spec: FieldSpec, obj: dict[str, Any], resolve: Resolver | None = None
) -> dict[str, Any]:
    """Select the fields of ``obj`` named by ``spec``."""
    keys = list(obj) if spec.include_all else []
    keys += [k for k in spec.fields if k not in keys]
    out: dict[str, Any] = {}
    for key in keys:
        if key in spec.exclude or key not in obj:
            continue
        out[key] = _render(obj[key], spec.fields.get(key), resolve)
    return out


def _render(value: Any, sub: FieldSpec | None, resolve: Resolver | None) -> Any:
    if isinstance(value, Ref):
        if sub is None or resolve is None:
            return {"id": value.uid}
        target = resolve(value)
        return apply_fields(sub, target, resolve) if target is not None else {"id": value.uid}
    if isinstance(value, list):
        return [_render(v, sub, resolve) for v in value]
    if isinstance(value, dict):
        if sub is None:
            return {k: _render(v, None, resolve) for k, v in value.items()}
        return apply_fields(sub, value, resolve)
    return value


def _values_at(obj: dict[str, Any], path: list[str], resolve: Resolver | None) -> list[Any]:
    current: list[Any] = [obj]
    for part in path:
        nxt: list[Any] = []
        for found in current:
            value = found
            if isinstance(found, Ref):
                if part == "id":
                    nxt.append(found.uid)
                    continue
                value = resolve(found) if resolve else None
            if isinstance(value, dict) and part in value:
                item = value[part]
                if isinstance(item, list):
                    nxt.extend(item)
                else:
                    nxt.append(item)
        current = nxt
    return [v.uid if isinstance(v, Ref) else v for v in current]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def match_filter(expr: str, obj: dict[str, Any], resolve: Resolver | None = None) -> bool:
    """Evaluate one ``property:operator:value`` metadata filter against ``obj``."""
    prop, _, rest = expr.partition(":")
    op, _, operand = rest.partition(":")
    values = [v for v in _values_at(obj, prop.split("."), resolve) if v is not None]
    texts = [_text(v) for v in values]
    if op == "null":
        return not texts
    if op == "!null":
        return bool(texts)
    if op in ("in", "!in"):
        wanted = {w.strip() for w in operand.strip("[]").split(",")}
        hit = any(t in wanted for t in texts)
        return hit if op == "in" else not hit
    if op == "eq":
        return operand in texts
    if op in ("!eq", "ne", "neq"):
        return operand not in texts
    if op == "like":
        return any(operand in t for t in texts)
    if op == "!like":
        return not any(operand in t for t in texts)
    if op == "ilike":
        return any(operand.lower() in t.lower() for t in texts)
    if op == "!ilike":
        return not any(operand.lower() in t.lower() for t in texts)
    if op in ("$like", "$ilike"):
        return any(t.lower().startswith(operand.lower()) for t in texts)
    if op in ("like$", "ilike$"):
        return any(t.lower().endswith(operand.lower()) for t in texts)
    if op in ("gt", "ge", "lt", "le"):
        return any(_compare(t, op, operand) for t in texts)
    if op == "empty":
        return not texts
    return False


def _compare(left: str, op: str, right: str) -> bool:
    a: float | str
    b: float | str
    try:
        a, b = float(left), float(right)
    except ValueError:
        a, b = left, right
    if op == "gt":
        return a > b  # type: ignore[operator]  # both floats or both str
    if op == "ge":
        return a >= b  # type: ignore[operator]  # both floats or both str
    if op == "lt":
        return a < b  # type: ignore[operator]  # both floats or both str
    return a <= b  # type: ignore[operator]  # both floats or both str
