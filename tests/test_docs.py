"""The documentation is checked like code: links resolve, Python snippets are valid Python,
and every public name the docs import exists."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

import dhis2_lmis
from dhis2_lmis.run._tabular import TABLES

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def snippets(page: Path) -> list[str]:
    """The Python code blocks of a page (dedented: some sit inside list items)."""
    return [textwrap.dedent(block) for block in PYTHON_BLOCK.findall(page.read_text())]


def anchors(page: Path) -> set[str]:
    """GitHub-style anchors of a page's headings."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            found.add(slug)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_existing_files_and_headings(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        missing_anchor = bool(anchor) and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_snippets_parse(page: Path) -> None:
    for block in snippets(page):
        ast.parse(block)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_names_imported_from_the_package_exist(page: Path) -> None:
    missing = []
    for block in snippets(page):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module == "dhis2_lmis":
                missing += [a.name for a in node.names if not hasattr(dhis2_lmis, a.name)]
    assert missing == []


def test_recipes_list_the_output_columns_of_every_record_type() -> None:
    """docs/recipes.md, "Output columns": what users read is what the command and
    to_dataframe print, in order (the table is checked against the one definition)."""
    documented = {}
    for line in (ROOT / "docs" / "recipes.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[2].strip("`") in TABLES:
            documented[cells[2].strip("`")] = re.findall(r"`([a-z_]+)`", cells[3])
    shown = {kind: list(table.names) for kind, table in TABLES.items() if kind != "conflicts"}
    assert documented == shown
