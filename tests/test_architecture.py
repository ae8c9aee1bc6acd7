"""The house's floors: every import points down, and no two modules import each other.

Read from the source (every `import`, at module level or inside a function), not from what a
running interpreter happened to load, so a lazy import cannot hide a wrong arrow.

    palabre/                      the top floor: settings, CLI, wiring; imports anything
    bot/   mailer/   scheduler/   the doors (channels) and the clock's hand
    templates/                    every word a person reads, and the code that renders it
    consultation/                 the rules of the process
    models/                       the tables
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package may import from the project (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "consultation": {"models"},
    "templates": {"consultation", "models"},
    "scheduler": {"consultation", "models", "templates"},
    "bot": {"consultation", "models", "templates"},
    "mailer": {"consultation", "models", "templates"},
    "palabre": {"bot", "mailer", "scheduler", "templates", "consultation", "models"},
}
PACKAGES = set(ALLOWED)


def modules() -> Iterator[tuple[str, Path]]:
    for package in sorted(PACKAGES):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


KNOWN = {name for name, _ in modules()}


def imports_of(name: str, path: Path) -> set[str]:
    """The project modules `name` imports, resolved to modules (not names inside them)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # `from consultation import phases` names a module; `from models import Phase` a
            # name inside one: keep the longest known module prefix.
            while target and target not in KNOWN:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name, path) for name, path in modules()}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_import_points_down(package):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package] | {package}
    )
    assert not wrong, "\n".join(wrong)


def test_no_two_modules_import_each_other_even_through_others():
    # Package __init__ modules are skipped as nodes: `import consultation.x` runs
    # consultation/__init__ first, which is not an arrow between features.
    graph = {
        module: {t for t in targets if t.split(".")[-1] != "__init__" and t in GRAPH}
        for module, targets in GRAPH.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(" → ".join(cycle) for cycle in cycles)


def test_the_rule_is_read_from_the_real_tree():
    # A guard against a walker that finds nothing and so passes everything.
    assert "consultation.outbox" in GRAPH["consultation.findings"]
    assert "templates.render" in GRAPH["palabre.cli"] or any(
        target.startswith("templates") for target in GRAPH["palabre.web"]
    )
    assert {"bot.app", "mailer.sender", "scheduler.service"} <= {
        target
        for module, targets in GRAPH.items()
        if module.startswith("palabre")
        for target in targets
    }
