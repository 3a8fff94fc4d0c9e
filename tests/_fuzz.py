"""The fuzzing helpers: one hypothesis profile, one JSON strategy, one way to mutate a real body.

Shared by tests/reliability/test_fuzz.py (every response parser, the configuration loader) and
tests/test_imports.py (the import answer parsers), so both draw the same kinds of bodies and hold
parsers to the same rule: whatever a server or proxy sends, a parser answers or raises a
``Dhis2Error``. Imported as ``tests._fuzz``, like ``tests._cassettes``.

``PROFILE`` is the profile named by ``HYPOTHESIS_PROFILE``: ``reliability`` (the default, 400
derandomized examples per property, a few seconds) or ``thorough`` (5,000, random, minutes). It
is applied per test (``@PROFILE``), never loaded globally, so other hypothesis tests keep their
own settings.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dhis2_lmis.errors import Dhis2Error
from tests._cassettes import CASSETTES, recorded_bodies

__all__ = [
    "JSON",
    "MUTATIONS",
    "PROFILE",
    "assert_only_dhis2_errors",
    "mutated",
    "mutated_bodies",
    "paths",
    "real_bodies",
]

_SLOW_IS_FINE = (HealthCheck.too_slow, HealthCheck.data_too_large)
settings.register_profile(
    "reliability",
    max_examples=400,
    deadline=None,  # a shared 2-core CI box: timing-based failures would be noise
    suppress_health_check=_SLOW_IS_FINE,
    derandomize=True,  # CI runs are reproducible; the thorough profile explores
    database=None,
)
settings.register_profile(
    "thorough",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=_SLOW_IS_FINE,
    database=None,
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "reliability"))

# Keys the parsers look for (import answers, events, tracked entities, data values, jobs, /me),
# so random objects often have the shape a parser expects, with the wrong things inside.
_DHIS2_KEYS = [
    "status", "response", "responseType", "importCount", "imported", "conflicts", "indexes",
    "object", "value", "stats", "validationReport", "errorReports", "bundleReport",
    "typeReportMap", "objectReports", "importSummaries", "reference", "message", "username",
    "userCredentials", "attributes", "dataValues", "id", "location", "jobType", "pager",
    "event", "events", "instances", "occurredAt", "updatedAt", "trackedEntity", "enrollments",
    "dataElement", "period", "orgUnit",
]  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "OK", "SUCCESS", "ERROR", "WARNING", "2.41.0", "2024-07-26T18:01"])
)
JSON: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_DHIS2_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
"""Any JSON document, its objects keyed mostly by DHIS2's own keys."""


def real_bodies() -> list[Any]:
    """Every JSON body recorded in ``tests/cassettes/``: cassette answers and import fixtures.

    Single events, tracked entities and import summaries are added on their own as well, so a
    mutation reaches their fields directly.
    """
    bodies: list[Any] = []
    for path in sorted(CASSETTES.rglob("*.yaml")):
        for _uri, body in recorded_bodies(str(path.relative_to(CASSETTES))):
            try:
                bodies.append(json.loads(body))
            except ValueError:
                continue  # HTML pages and static resources are not JSON bodies
    for path in sorted(CASSETTES.rglob("*.json")):
        bodies.append(json.loads(path.read_text(encoding="utf-8")))
    for body in list(bodies):
        if isinstance(body, dict):
            for key in ("events", "instances", "importSummaries", "trackedEntities"):
                items = body.get(key)
                if isinstance(items, list):
                    bodies.extend(items[:3])
            response = body.get("response")
            if isinstance(response, dict):
                bodies.append(response)
    return bodies


def paths(value: Any, prefix: tuple[Any, ...] = (), *, width: int = 5) -> Iterator[tuple[Any, ...]]:
    """The path of every node of a JSON document (the first ``width`` items of each list)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key), width=width)
    elif isinstance(value, list):
        for index, child in enumerate(value[:width]):
            yield from paths(child, (*prefix, index), width=width)


MUTATIONS = ("replace", "delete", "truncate", "empty", "stringify")


def mutated(body: Any, path: tuple[Any, ...], how: str, replacement: Any = None) -> Any:
    """A copy of ``body`` with the node at ``path`` changed ``how`` (one of ``MUTATIONS``).

    ``replace`` puts ``replacement`` there, ``delete`` removes it, ``truncate`` halves a list or
    string, ``empty`` empties a container or string, ``stringify`` turns it into a cut JSON
    string. A change that does not apply to the node leaves the copy as it was.
    """
    if not path:
        return copy.deepcopy(replacement) if how == "replace" else copy.deepcopy(body)
    out = copy.deepcopy(body)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    current = parent[last]
    if how == "replace":
        parent[last] = replacement
    elif how == "delete":
        del parent[last]
    elif how == "truncate" and isinstance(current, (list, str)):
        parent[last] = current[: len(current) // 2]
    elif how == "empty" and isinstance(current, (list, dict, str)):
        parent[last] = type(current)()
    elif how == "stringify":
        parent[last] = json.dumps(current)[:12]
    return out


def mutated_bodies(corpus: Sequence[Any]) -> st.SearchStrategy[Any]:
    """A body of ``corpus`` changed in one to four random places."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> Any:
        body = draw(st.sampled_from(corpus))
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            path = draw(st.sampled_from(list(paths(body))))
            how = draw(st.sampled_from(MUTATIONS))
            body = mutated(body, path, how, draw(JSON) if how == "replace" else None)
        return body

    return draw_one()


def assert_only_dhis2_errors(
    name: str, parse: Callable[[Any], object], body: Any, *, may_raise: bool = True
) -> None:
    """Run ``parse`` on ``body``: it may raise a ``Dhis2Error`` (only if ``may_raise``), nothing
    else; any other exception fails the test, naming the parser.

    ``body`` is handed over as is; a caller that reuses one body for several parsers passes each
    a copy (``copy.deepcopy``), so one parser's slip cannot change what the next one reads.
    """
    try:
        parse(body)
    except Dhis2Error:
        if not may_raise:
            raise
    except Exception as exc:  # the property under test: nothing but a Dhis2Error escapes
        raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from exc
