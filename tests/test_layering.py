"""Architecture: the packages import one way, as the design's map draws them.

    bot/, web/ (the shell)  →  scheduler/ jobs  →  handlers/ (conversations)  →  models/
                                                                                   ↓
                                  scheduler.calendar, .deadlines, .time_left (pure arithmetic)

Every .py file is parsed with `ast` and *every* import counts: at module level, inside functions
(the late imports that hide a circle) and under `if TYPE_CHECKING:`. Type-only imports are not
allowed across a forbidden edge either: an annotation naming handlers.CaseCard still makes the
models know the conversations, and the circle comes back the day someone needs the value.

The rules checked are the design's (docs: /work/shared/DESIGN.md "The map"):
- models/ imports nothing from handlers/ (rendering is the conversations'; the shell installs
  the words, handlers.notify), bot/ or web/ (the shell), and no platform or web library;
- from scheduler/ the models use only the pure working-day calendar and deadline arithmetic the
  map places there, which in turn imports none of our packages above it, so there is no circle
  models ↔ scheduler (alarm planning, which the complaint's save hook needs, is models.alarms);
- handlers/ is platform-neutral and below the shell and the scheduler: no bot/, web/,
  scheduler/, telegram, wechatpy or aiohttp;
- python-telegram-bot and wechatpy are the channel adapters' (bot/) alone, and no module
  imports both (bot.app mounts each adapter only when configured).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bot", "config", "handlers", "models", "scheduler", "web")
PLATFORMS = ("telegram", "wechatpy")
# The scheduler's pure modules (working days, deadlines, time left): the models count with them.
PURE_SCHEDULER = ("scheduler.calendar", "scheduler.deadlines", "scheduler.time_left")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> Iterator[str]:
    """Every module `source` imports anywhere in its tree: `a.b` for `import a.b`, and for
    `from a.b import c` both `a.b` and `a.b.c` (c may be a submodule). Relative imports are
    resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def files_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    return set(
        imported_modules(path.read_text(), module_name(path), is_package=path.name == "__init__.py")
    )


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module_name(path)} imports {name}"
        for path in files_of(package)
        for name in sorted(imports_of(path))
        if within(name, *forbidden)
    ]


def test_the_import_finder_sees_late_and_type_only_imports() -> None:
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from handlers.staff import CaseCard
def hook():
    from scheduler.alarms import refresh_alarm
    import bot.app
from .entities import Complaint
"""
    found = set(imported_modules(source, "models.notifications"))
    assert {"handlers.staff.CaseCard", "scheduler.alarms", "bot.app"} <= found
    assert "models.entities.Complaint" in found
    assert len(files_of("models")) > 20  # the walk reads the real tree, not nothing


def test_models_import_neither_the_conversations_nor_the_shell() -> None:
    assert offending("models", ("handlers", "bot", "web", *PLATFORMS, "aiohttp")) == []


def test_models_use_only_the_pure_arithmetic_of_the_scheduler() -> None:
    used = [
        f"{module_name(path)} imports {name}"
        for path in files_of("models")
        for name in sorted(imports_of(path))
        if within(name, "scheduler") and not within(name, *PURE_SCHEDULER)
    ]
    assert used == []


@pytest.mark.parametrize("pure", PURE_SCHEDULER)
def test_the_pure_scheduler_modules_import_nothing_above_them(pure: str) -> None:
    """What the models import from scheduler/ must not lead back up (no circle)."""
    path = ROOT / (pure.replace(".", "/") + ".py")
    above = [
        name
        for name in sorted(imports_of(path))
        if within(name, *PRODUCT)
        and not within(name, *PURE_SCHEDULER)
        and not within(name, "config.settings")  # the calendar's default holiday overrides
    ]
    assert above == []


def test_the_settings_the_calendar_reads_import_none_of_our_packages() -> None:
    assert [n for n in imports_of(ROOT / "config" / "settings.py") if within(n, *PRODUCT)] == []


def test_models_load_nothing_dynamically() -> None:
    """No importlib or __import__ in models/: the rules above cannot be walked around."""
    dynamic = [
        module_name(path)
        for path in files_of("models")
        if "importlib" in {n.split(".")[0] for n in imports_of(path)}
        or "__import__" in path.read_text()
    ]
    assert dynamic == []


def test_handlers_are_platform_neutral_and_below_the_shell() -> None:
    assert offending("handlers", ("bot", "web", "scheduler", *PLATFORMS, "aiohttp")) == []


def test_the_platform_libraries_are_the_adapters_alone() -> None:
    outside = [
        f"{module_name(path)} imports {name}"
        for package in PRODUCT
        if package != "bot"
        for path in files_of(package)
        for name in sorted(imports_of(path))
        if within(name, *PLATFORMS)
    ]
    assert outside == []
    both = [
        module_name(path)
        for package in PRODUCT
        for path in files_of(package)
        if all(any(within(n, lib) for n in imports_of(path)) for lib in PLATFORMS)
    ]
    assert both == []
