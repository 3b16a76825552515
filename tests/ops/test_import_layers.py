"""Imports point one way: core <- quotas <- accounts <- the feature apps <- config.

Every module of every app is parsed (imports inside functions count: a lazy import is still a
dependency) and each import of a project package is checked against the table below. Tests,
benchmarks and scripts are not apps and may import anything."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What each app may import besides itself. `config` wires everything and may import anything;
# nothing outside config imports config. `analytics` reports over every app's rows (the staff
# dashboard), so it sits above the feature apps and nothing but config imports it.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "quotas": frozenset({"core"}),
    "accounts": frozenset({"core", "quotas"}),
    "ai_services": frozenset({"core", "quotas", "accounts"}),
    # video transcribes captions and OCRs frames through ai_services' providers and indexes its
    # moments in the user's embeddings; neither of those apps imports video.
    "video": frozenset({"core", "quotas", "accounts", "ai_services", "embeddings"}),
    "embeddings": frozenset({"core", "quotas", "accounts", "ai_services"}),
    "analytics": frozenset({"core", "quotas", "accounts", "ai_services", "video", "embeddings"}),
}
APPS = frozenset(ALLOWED) | {"config"}
ALLOWED["config"] = frozenset(APPS)


def _modules() -> Iterator[tuple[str, Path]]:
    for app in sorted(APPS):
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            yield ".".join(parts), path


def _imports(module: str, path: Path) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def _violations() -> set[tuple[str, str]]:
    found = set()
    for module, path in _modules():
        app = module.split(".")[0]
        for imported in _imports(module, path):
            target = imported.split(".")[0]
            if target in APPS and target != app and target not in ALLOWED[app]:
                found.add((module, imported))
    return found


def test_the_scan_sees_every_app_and_lazy_imports():
    modules = dict(_modules())
    assert {name.split(".")[0] for name in modules} == APPS
    # quotas.apps imports its selectors inside ready(): found although not at module level.
    assert "quotas.selectors" in set(_imports("quotas.apps", modules["quotas.apps"]))


def test_imports_point_one_way():
    found = sorted(_violations())
    assert not found, "imports against the layering (see ALLOWED):\n" + "\n".join(f"{a} -> {b}" for a, b in found)


def test_selectors_do_not_call_services():
    """Selectors only read: none imports a services module (which would also be an import cycle,
    since services read through selectors)."""
    found = sorted(
        (module, imported)
        for module, path in _modules()
        if module.split(".")[-1] == "selectors" or ".selectors." in f"{module}."
        for imported in _imports(module, path)
        if imported.split(".")[-1] == "services" or ".services." in f"{imported}."
    )
    assert not found, "\n".join(f"{a} -> {b}" for a, b in found)
