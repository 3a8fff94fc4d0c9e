"""Print pip constraints pinning every direct dependency to the lowest version pyproject allows.

CI installs the project with these constraints in a second environment and runs the tests and
the demo there, so each declared lower bound (``>=``) is one the code is known to work with.
The floors are read from pyproject.toml, never repeated here: raising a bound there moves the
test with it. Reads ``[project].dependencies`` and the extras named on the command line; an
extra that names this project (``dhis2-lmis[notebook]``) pulls in that extra's requirements.
Environment markers are kept, so a floor for another Python (``tomli`` on 3.10) stays
conditional. A requirement without a lower bound is an error: an undeclared floor cannot be
tested.

Usage: ``python .ci/floors.py test > floors.txt`` then ``pip install -c floors.txt '.[test]'``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - CI runs 3.11
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?"
    r"\s*(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+))?$"
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(project: dict[str, Any], extras: list[str]) -> list[str]:
    """One ``name==floor[; marker]`` line per direct requirement of the project and extras."""
    own = _canonical(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    todo = [*project.get("dependencies", []), *(f"{own}[{extra}]" for extra in extras)]
    expanded: set[str] = set()
    pins: dict[str, str] = {}
    while todo:
        requirement = todo.pop()
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        name = _canonical(match["name"])
        if name == own:  # the project itself: stands for the extras it names
            for extra in filter(None, (e.strip() for e in (match["extras"] or "").split(","))):
                if extra not in optional:
                    raise SystemExit(f"pyproject.toml has no extra {extra!r}")
                if extra not in expanded:
                    expanded.add(extra)
                    todo += optional[extra]
            continue
        lower = [s.strip()[2:].strip() for s in match["specs"].split(",") if ">=" in s]
        if len(lower) != 1:
            raise SystemExit(f"{requirement!r} declares no single lower bound (>=)")
        marker = f"; {match['marker']}" if match["marker"] else ""
        pins[name] = f"{name}=={lower[0]}{marker}"
    return sorted(pins.values())


def main(argv: list[str]) -> int:
    with PYPROJECT.open("rb") as handle:
        project = tomllib.load(handle)["project"]
    print("\n".join(floors(project, argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
