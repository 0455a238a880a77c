"""The import graph of ``probinfer/``: no circle, and every arrow points down the layers.

A small AST walk (no import-linter dependency). Every ``import``/``from ... import`` of a
``probinfer`` module counts, at module level or inside a function (a lazy import is still
a dependency). Nodes are modules (files); ``from probinfer.a import b`` is an edge to
``probinfer.a.b`` when that is a module, else to ``probinfer.a``. A package's
``__init__`` re-exports are a namespace, so importing ``probinfer.a.b`` is not counted as
importing ``probinfer.a``.

Layers (a module may import its own layer and the ones below, never above):

0. ground: ``_types, _validation, _random, _progress, _compile, _optional, result, targets, particles,
   kernels`` and the ``smc`` namespace over ``particles``;
1. ``diffusion``, ``ssm``;
2. ``steering`` (and its ``steer`` namespace), ``dmcmc``, ``importance``, ``bridges``,
   ``gpdp``, ``design``, ``zoo``, ``diagnostics``;
3. ``compare``, ``plot``;
4. ``cli`` and ``__main__`` (``python -m probinfer``); nothing but ``__main__`` imports
   ``cli``.

``diagnostics`` sits in layer 2, beside ``zoo`` (image-quality scores load the shipped
classifier). ``Result.to_arviz`` delegates to it with an import inside the method: that is
the one upward arrow allowed (``ALLOWED_UPWARD``); ``diagnostics`` knows nothing of the
Info types (only the ``traces()`` protocol), so the arrow closes no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "probinfer"

LAYERS = {
    0: ("_types", "_validation", "_random", "_progress", "_compile", "_optional", "result",
        "_checkpoint", "_sharding", "_executor", "_chunks",
        "targets",
        "particles", "kernels", "smc"),
    1: ("diffusion", "ssm"),
    2: ("steering", "steer", "dmcmc", "importance", "bridges", "gpdp", "design", "zoo",
        "diagnostics", "_zoo_networks", "_zoo_design"),
    3: ("compare", "plot"),
    4: ("cli", "__main__"),
}
LAYER_OF = {part: layer for layer, parts in LAYERS.items() for part in parts}

# (importer, imported): lazy delegates from a lower layer to a higher one, by design.
ALLOWED_UPWARD = {("probinfer.result", "probinfer.diagnostics.arviz")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules) -> str | None:
    """The longest prefix of ``name`` that is a probinfer module."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every probinfer import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names]
            names = [n if _resolve(n, modules) == n else prefix for n in names]
        else:
            continue
        for name in names:
            if name == "probinfer" or not name.startswith("probinfer."):
                continue
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.append((target, node.lineno))
    return found


def _graph():
    modules = _modules()
    return modules, {m: _imports(m, p, modules) for m, p in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return None if len(parts) < 2 else LAYER_OF.get(parts[1])


def _cycle(graph) -> list[str] | None:
    """One import circle (as a list of modules), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target, _ in graph.get(node, []):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_every_module_has_a_layer():
    modules, _ = _graph()
    missing = [m for m in modules if m != "probinfer" and _layer(m) is None]
    assert not missing, f"modules outside every layer (add them to LAYERS): {missing}"


def test_no_import_cycle():
    _, graph = _graph()
    graph = {m: [(t, line) for t, line in edges if t != "probinfer"]
             for m, edges in graph.items() if m != "probinfer"}
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def _upward(graph, modules):
    found = []
    for module, edges in graph.items():
        if module == "probinfer":
            continue
        for target, line in edges:
            below, above = _layer(module), _layer(target)
            imports_cli = target.split(".")[1:2] == ["cli"] and module != "probinfer.__main__"
            if imports_cli or (above is not None and below is not None and above > below):
                if (module, target) not in ALLOWED_UPWARD:
                    found.append((module, target,
                                  f"{modules[module].relative_to(PACKAGE.parent)}:{line}"))
    return found


def test_imports_point_down_the_layers():
    modules, graph = _graph()
    found = [f"{where}: {m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
             for m, t, where in _upward(graph, modules)]
    assert not found, "upward imports:\n" + "\n".join(found)


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    """A lazy import inside a function and a relative import are both arrows."""
    modules = {"probinfer.result": None, "probinfer.diagnostics": None,
               "probinfer.diagnostics.arviz": None, "probinfer.particles.weights": None,
               "probinfer.particles": None}
    source = tmp_path / "arviz.py"
    source.write_text("from . import other\n"
                      "def f():\n"
                      "    from probinfer.particles.weights import ess\n"
                      "    import probinfer.result\n")
    found = {t for t, _ in _imports("probinfer.diagnostics.arviz", source, modules)}
    assert found == {"probinfer.diagnostics", "probinfer.particles.weights",
                     "probinfer.result"}
    _, graph = _graph()
    assert "probinfer.diagnostics.arviz" in {t for t, _ in graph["probinfer.result"]}
