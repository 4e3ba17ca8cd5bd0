"""The package's shape: folders that follow the data path, and imports that run one way.

    events/ ──► extension ──► checkpoint/ ──► store/
                   │              └──────► dataset/ ──► store/ (its connection settings)
    tools/ (the command line) may use any of them; none of them uses tools/.

The leaves (``stats_keys``, ``exit_codes``, ``_async``, ``_scrapy_internals``, ``environment``)
import nothing of the package; ``config`` gathers the option groups of every folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scrapy_actor_events"
LEAVES = {"stats_keys", "exit_codes", "_async", "_scrapy_internals", "environment"}
#: What each part may import from the package (its own folder is always allowed).
ALLOWED = {
    "store": LEAVES,
    "dataset": LEAVES | {"store"},
    "checkpoint": LEAVES | {"store", "dataset"},
    "events": LEAVES | {"checkpoint"},
    "download_log": LEAVES,
    "config": LEAVES | {"checkpoint", "events", "store", "dataset", "status"},
    "extension": LEAVES
    | {"checkpoint", "events", "store", "dataset", "config", "download_log", "shutdown", "status"},
    "shutdown": LEAVES,
    "status": LEAVES | {"checkpoint"},
}
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """(package module, names) for every import of the package in ``path``, type-only included."""
    found = []
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, []))
            continue
        else:
            continue
        if module == PACKAGE.name or module.startswith(PACKAGE.name + "."):
            found.append((module, names))
    return [(m, n) for m, n in found if m.startswith(PACKAGE.name)]


def target_parts(module: str, names: list[str]) -> set[str]:
    """The parts of the package an import reaches: ``from .. import stats_keys`` reaches
    ``stats_keys``; ``from ..store.base import X`` reaches ``store``."""
    parts = module.split(".")[1:]
    if parts:
        return {parts[0]}
    return set(names)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path) -> None:
    part = part_of(path)
    for module, names in imported(path):
        reached = target_parts(module, names) - {part, "__version__"}
        if part == "tools" or part in {"__init__", "__main__"}:
            continue
        assert "tools" not in reached, f"{path.name} imports tools/ ({module})"
        if part in LEAVES:
            assert not reached, f"the leaf {part} imports {reached} ({module})"
        elif part in ALLOWED:
            assert reached <= ALLOWED[part], f"{part} imports {reached - ALLOWED[part]}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    for module, names in imported(path):
        private = [
            n
            for n in names
            if n.startswith("_") and not (PACKAGE / f"{n}.py").exists() and n != "__version__"
        ]
        assert not private, f"{path.name} imports {private} from {module}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_scrapy_private_attributes_are_touched_in_one_module() -> None:
    private = {"_slot", "_start", "_fingerprints", "_scrape_next", "_delay", "_process_queue"}
    for path in modules():
        if path.name == "_scrapy_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private:
                raise AssertionError(f"{path.name}:{node.lineno} reaches Scrapy's {node.attr}")


def test_every_stats_key_comes_from_stats_keys() -> None:
    for path in modules():
        if path.name == "stats_keys.py":
            continue
        text = path.read_text()
        assert '"actor_events/' not in text, f"{path.name} spells a stats key itself"
