"""The package's imports point downward only: a module never imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scheduler_milp"

#: layer of each top-level module or folder of the package, lowest first
LAYERS: dict[str, int] = {
    "model": 0,
    "registry": 1,
    "traces": 1,
    "generators": 1,
    "baselines": 2,
    "formulations": 3,
    "heuristics": 4,
    "bounds": 5,
    "portfolio": 6,
    "online": 7,
    "timing": 1,
    "replicas": 6,
    "experiments": 8,
    "plots": 1,
    "cli": 10,
    "commands": 10,
    "__init__": 10,
    "__main__": 10,
}


def _part(module: str) -> str:
    """The top-level part of a dotted module name inside the package."""
    return module.split(".")[0]


def _imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """``(line, module inside the package)`` for every import of the file, lazy ones included."""
    rel = path.relative_to(root).with_suffix("")
    package_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if not target:  # ``from . import x`` at the top: the imported names are modules
                    found.extend((node.lineno, alias.name) for alias in node.names)
                    continue
                found.append((node.lineno, target))
            elif node.module and node.module.startswith("scheduler_milp."):
                found.append((node.lineno, node.module.removeprefix("scheduler_milp.")))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("scheduler_milp."):
                    found.append((node.lineno, alias.name.removeprefix("scheduler_milp.")))
    return found


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        part = _part(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        assert part in LAYERS, f"{path}: add its folder to LAYERS"


def test_imports_point_downward_only() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = LAYERS[_part(".".join(path.relative_to(PACKAGE).with_suffix("").parts))]
        for line, target in _imports(path):
            layer = LAYERS.get(_part(target))
            assert layer is not None, f"{path}:{line} imports unknown part {target}"
            if layer > own:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    assert not upward, "imports pointing upward:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a lazy import of the portfolio from the model layer is found."""
    bad = tmp_path / "model" / "probe.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from ..portfolio.auto import solve_auto\n    return solve_auto\n")
    assert _imports(bad, tmp_path) == [(2, "portfolio.auto")]
    assert LAYERS["portfolio"] > LAYERS["model"]
