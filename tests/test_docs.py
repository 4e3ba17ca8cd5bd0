"""The docs follow the code: settings, stats, exit codes, the package's parts, links, the README.

Each test reads a table of the docs and compares it with the module that holds the rule, so a
setting, a stats key, an exit code or a module added without its row fails here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from scrapy_actor_events import stats_keys
from scrapy_actor_events.config import DEFAULTS
from scrapy_actor_events.events.messages import KNOWN_EVENTS
from scrapy_actor_events.exit_codes import CLOSE_REASONS, ExitCode

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
PACKAGE = ROOT / "scrapy_actor_events"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 200
#: The two commands .ci/run runs, which must be the README's first ```sh block.
SETUP_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/scrapy-actor-events demo",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest",
]
SETTING = re.compile(r"\b(?:ACTOR_EVENTS|SPIDER_STATE)_[A-Z_]+")


# -- reading markdown ---------------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def outside_code_blocks(text: str) -> list[str]:
    """The lines of ``text`` that are not inside a fenced code block."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def section(text: str, heading: str) -> str:
    """The text under ``## heading``, up to the next heading of that level."""
    marker = f"\n## {heading}\n"
    assert marker in text, f"no section {heading!r}"
    return text.split(marker, 1)[1].split("\n## ", 1)[0]


def tables(text: str) -> list[list[list[str]]]:
    """Every table in ``text``: its rows (the header first, without the separator), as cells."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in outside_code_blocks(text):
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        if current is None:
            current = []
            found.append(current)
        current.append(cells)
    return found


def rows(text: str, header: str) -> list[list[str]]:
    """The body rows of every table whose first header cell is ``header``."""
    return [row for table in tables(text) if table[0][0] == header for row in table[1:]]


def spans(text: str) -> list[str]:
    """The code spans of a cell, or of a page outside its code blocks."""
    return re.findall(r"`([^`]+)`", "\n".join(outside_code_blocks(text)))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in outside_code_blocks(read(path)):
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


# -- settings -----------------------------------------------------------------------------------


def settings_rows(path: Path) -> list[list[str]]:
    return rows(read(path), "setting")


def test_the_settings_page_lists_every_setting_once() -> None:
    listed = [spans(row[0])[0] for row in settings_rows(DOCS / "SETTINGS.md")]
    assert all(len(spans(row[0])) == 1 for row in settings_rows(DOCS / "SETTINGS.md"))
    assert sorted(listed) == sorted(DEFAULTS)


@pytest.mark.parametrize("page", ["docs/SETTINGS.md", "README.md"])
def test_documented_defaults_are_the_defaults(page: str) -> None:
    table = settings_rows(ROOT / page)
    assert table
    for row in table:
        name = spans(row[0])[0]
        assert name in DEFAULTS, f"{page} documents {name}, which is not a setting"
        default = DEFAULTS[name]
        if default is None:  # from the environment, or unset: the page says which in words
            continue
        shown = (spans(row[1]) or [row[1]])[0].replace(",", "")
        if isinstance(default, bool):
            assert shown == str(default), name
        elif isinstance(default, (int, float)):
            assert float(shown) == default, name
        else:
            assert shown == default, name


def test_every_setting_the_docs_name_exists() -> None:
    for page in PAGES:
        # A renamed setting would leave its old name behind.
        named = set(SETTING.findall(read(page)))
        assert named <= set(DEFAULTS), f"{page.name}: {sorted(named - set(DEFAULTS))}"


# -- stats --------------------------------------------------------------------------------------


def stats_constants() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(stats_keys).items()
        if name.isupper() and isinstance(value, str) and value.startswith(stats_keys.PREFIX)
    }


def test_every_stats_key_is_on_the_stats_page() -> None:
    page = read(DOCS / "STATS.md")
    documented = set(spans(page))
    for name, key in stats_constants().items():
        if key.endswith("/"):  # a family of keys
            assert any(span.startswith(key) for span in documented), name
        else:
            assert key in documented, f"stats_keys.{name} ({key}) is not in docs/STATS.md"
    events_row = next(row for row in rows(page, "stat") if stats_keys.EVENTS_PREFIX in row[0])
    assert set(spans(events_row[1])) == {*KNOWN_EVENTS, "unknown"}


def test_every_stats_key_the_docs_name_exists() -> None:
    keys = {v for v in stats_constants().values() if not v.endswith("/")}
    families = {k[: i + 1] for k in keys for i, c in enumerate(k) if c == "/"}
    events = {stats_keys.event_key(name) for name in {*KNOWN_EVENTS, "unknown", "<name>"}}
    for page in PAGES:
        for key in re.findall(r"\bactor_events/[\w/<>*]+", read(page)):
            known = key in keys or key in events or (key.endswith("/*") and key[:-1] in families)
            assert known, f"{page.name} names the stats key {key}, which stats_keys.py lacks"


# -- exit codes and close reasons ---------------------------------------------------------------


def test_the_exit_code_table_is_exit_codes() -> None:
    table = rows(section(read(DOCS / "CLI.md"), "Exit codes"), "code")
    documented = {int(row[0]): spans(row[1])[0] for row in table}
    assert documented == {code.value: code.name for code in ExitCode}


def test_there_is_one_exit_code_table() -> None:
    found = [page.name for page in PAGES for table in tables(read(page)) if table[0][0] == "code"]
    assert found == ["CLI.md"]


@pytest.mark.parametrize("page", ["CLI.md", "STATS.md"])
def test_the_close_reasons_are_exit_codes_close_reasons(page: str) -> None:
    table = rows(section(read(DOCS / page), "Close reasons"), "close reason")
    documented = {spans(row[0])[0]: int(row[-1]) for row in table if spans(row[0])}
    assert documented == {reason: code.value for reason, code in CLOSE_REASONS.items()}
    if page == "CLI.md":
        during_migration = [row for row in table if not spans(row[0])]
        assert [int(row[-1]) for row in during_migration] == [
            ExitCode.STOPPED_DURING_MIGRATION.value
        ]


# -- the package's parts ------------------------------------------------------------------------


def test_every_module_is_described() -> None:
    page = read(DOCS / "HOW-IT-WORKS.md")
    modules = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name not in {"__init__.py", "__main__.py"}
    }
    described = {s for s in spans(page) if s.endswith(".py") and not s.startswith("tests/")}
    assert modules <= described, f"not in docs/HOW-IT-WORKS.md: {sorted(modules - described)}"
    assert {s for s in described if not (PACKAGE / s).is_file()} == set()


def architecture_rules() -> tuple[set[str], dict[str, set[str]]]:
    """LEAVES and ALLOWED of the architecture test, wherever the tests keep it."""
    (path,) = (ROOT / "tests").rglob("test_architecture.py")
    spec = importlib.util.spec_from_file_location("architecture_rules", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.LEAVES), {k: set(v) for k, v in module.ALLOWED.items()}


def test_the_import_rules_are_the_architecture_tests() -> None:
    leaves, allowed = architecture_rules()
    table = rows(read(DOCS / "HOW-IT-WORKS.md"), "part")
    documented: dict[str, set[str]] = {}
    documented_leaves: set[str] = set()
    for part_cell, imports_cell in table:
        parts = [s.rstrip("/") for s in spans(part_cell)]
        if part_cell.startswith("the leaves"):
            assert imports_cell == "nothing"
            documented_leaves = set(parts)
        elif not imports_cell.startswith("anything"):
            names = {s.rstrip("/") for s in spans(imports_cell)}
            if "the leaves" in imports_cell:
                names |= leaves
            for part in parts:
                documented[part] = names
    assert documented_leaves == leaves
    assert documented == allowed


# -- links and the README -----------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_what_exists(page: Path) -> None:
    text = "\n".join(outside_code_blocks(read(page)))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        assert ROOT in linked.parents or linked == ROOT, f"{page.name} links out: {target}"
        if anchor:
            assert linked.suffix == ".md", target
            assert anchor in anchors(linked), f"{page.name}: no heading for {target}"


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = read(README)
    assert len(text.splitlines()) <= README_MAX_LINES
    # As .ci/run reads it: the lines between the first ```sh and the next ```.
    first_block = text.split("\n```sh\n", 1)[1].split("\n```", 1)[0]
    assert first_block.splitlines() == SETUP_COMMANDS
    assert text.index("```sh") == text.index("```"), "another code block comes before it"
