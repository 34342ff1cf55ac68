"""The README's layout tables stay true: every package and top-level module has its line, every config
group of conf/ names its code, and the code named there exists and imports.

Both tables are in the README's "Layout" section: the first lists paths (first column, in backticks,
from the repository root), the second ("Config groups and their code") maps group folders of conf/
to modules (`grit_exp...`, `hydra_plugins...`) or to "none" for groups that only hold values.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "grit_exp"
CODE = re.compile(r"`([^`]+)`")


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    level = heading.split()[0]
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", text[start + 1:])]
    return text[start:start + 1 + ends[0]] if ends else text[start:]


def table_rows(text: str) -> list[list[str]]:
    rows = [line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # past the header and its rule


README = (ROOT / "README.md").read_text()
LAYOUT = section(README, "## Layout")
GROUPS_TABLE = section(LAYOUT, "### Config groups and their code")
PATH_ROWS = table_rows(LAYOUT[:LAYOUT.index("\n### ")])
GROUP_ROWS = table_rows(GROUPS_TABLE)


def listed_paths() -> set[str]:
    return {p for row in PATH_ROWS for p in CODE.findall(row[0])}


def config_groups() -> set[str]:
    """Every folder of conf/ that holds YAML files (hydra/launcher, not hydra)."""
    return {p.parent.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")} - {"."}


def test_every_listed_path_exists():
    missing = sorted(p for p in listed_paths() if not (ROOT / p).exists())
    assert not missing, f"README layout names paths that do not exist: {missing}"


def test_every_package_and_top_level_module_has_a_line():
    packages = {f"{p.parent.relative_to(ROOT).as_posix()}/" for p in (ROOT / "src").rglob("__init__.py")
                if p.parent != PACKAGE}  # grit_exp itself: its top-level modules have their lines
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    unlisted = sorted((packages | modules) - listed_paths())
    assert not unlisted, f"README layout table lacks a line for: {unlisted}"
    assert len(PATH_ROWS) == len({row[0] for row in PATH_ROWS}), "one line per package"


def test_every_config_group_names_its_code():
    named = {g.rstrip("/") for row in GROUP_ROWS for g in CODE.findall(row[0]) if g.endswith("/")}
    assert named == config_groups(), (
        f"conf/ groups missing from the README's group table: {sorted(config_groups() - named)}; "
        f"in the table but not in conf/: {sorted(named - config_groups())}")


@pytest.mark.parametrize("row", GROUP_ROWS, ids=[row[0] for row in GROUP_ROWS])
def test_the_code_of_each_group_imports(row):
    modules = [m for m in CODE.findall(row[1]) if m.startswith(("grit_exp", "hydra_plugins"))]
    if not modules:
        assert row[1].startswith("none"), f"{row[0]}: name the code (`grit_exp...`) or say 'none: ...'"
    for name in modules:
        importlib.import_module(name)
