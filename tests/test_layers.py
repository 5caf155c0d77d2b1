"""The direction of imports is the architecture: cli -> workflows -> methods -> engine ->
models/metrics/data -> config/errors, and nothing imports upward.

Every module of the package is parsed with `ast`, so imports inside functions and under
`TYPE_CHECKING` count as much as those at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import unlearn_cli

PACKAGE = Path(unlearn_cli.__file__).parent

# The layer of each part of the package; a module may import its own layer and those below.
LAYERS = {
    "__main__": 6,
    "cli": 5,
    "api": 5,  # the lab scripts' public API, on top of the package as the CLI is
    "workflows": 4,
    "methods": 3,
    "engine": 2,
    "data": 1,
    "models": 1,
    "metrics": 1,
    "config": 0,
    "distributed": 0,  # torchrun and collectives, below everything that uses them
    "launch": 0,  # the launcher's environment, read without torch
    "errors": 0,
    "defaults": 0,  # one place for each default
    "": 0,  # unlearn_cli itself: __version__
}
# Third-party packages only the command line may use (progress goes through engine.progress).
CLI_ONLY = {"typer": LAYERS["cli"], "rich": LAYERS["cli"]}


def part_of(module: str) -> str:
    """The first name below `unlearn_cli` in a dotted module name: "engine", "cli", ...; ""
    for the package itself."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in `tree`, at any depth, relative ones resolved.
    `from unlearn_cli import cli` names the submodule `unlearn_cli.cli`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")
                parent = parent[: len(parent) - node.level + (1 if is_package else 0)]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            if base == "unlearn_cli":
                found += [(node.lineno, f"unlearn_cli.{alias.name}") for alias in node.names]
    return found


def upward_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """One line per import of `module` (dotted, e.g. "unlearn_cli.engine.train") that points to
    a higher layer, or to a third-party package reserved for the CLI."""
    layer = LAYERS[part_of(module)]
    problems = []
    for line, name in imported_modules(ast.parse(source), module, is_package):
        top = name.split(".")[0]
        if top == "unlearn_cli":
            target = part_of(name)
            above = LAYERS.get(target, 0) > layer
        else:
            target = top
            above = CLI_ONLY.get(top, 0) > layer
        if above:
            problems.append(f"{module}:{line} imports {name} (layer {part_of(module) or '.'})")
    return problems


def package_modules() -> list[tuple[str, Path, bool]]:
    """(dotted name, path, whether it is a package's __init__) of every module under
    unlearn_cli."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        out.append((".".join(parts[:-1] if is_package else parts), path, is_package))
    return out


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(module) for module, _, _ in package_modules()}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_nothing_imports_upward():
    problems = []
    for module, path, is_package in package_modules():
        problems += upward_imports(module, path.read_text(), is_package)
    assert problems == []


def test_nothing_in_the_package_imports_the_api():
    """`unlearn_cli.api` sits on top, as the CLI does: no module of the package uses it."""
    users = []
    for module, path, is_package in package_modules():
        for line, name in imported_modules(ast.parse(path.read_text()), module, is_package):
            if name == "unlearn_cli.api" or name.startswith("unlearn_cli.api."):
                users.append(f"{module}:{line}")
    assert users == []


def test_no_cycle_between_folders():
    edges: dict[str, set[str]] = {}
    for module, path, is_package in package_modules():
        for _, target in imported_modules(ast.parse(path.read_text()), module, is_package):
            if target.split(".")[0] == "unlearn_cli" and part_of(target) != part_of(module):
                edges.setdefault(part_of(module), set()).add(part_of(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(part for part in edges if reaches(part, part, {part}))
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        # an import inside a function body, as the package writes its heavy ones
        ("unlearn_cli.engine.train", "def f():\n    from unlearn_cli.methods import get_method\n"),
        ("unlearn_cli.methods.surgery", "import unlearn_cli.workflows.forget\n"),
        ("unlearn_cli.workflows.forget", "from unlearn_cli import cli\n"),
        ("unlearn_cli.data.spec", "from unlearn_cli.engine.checkpoint import Checkpoint\n"),
        ("unlearn_cli.workflows.compare", "if True:\n    from rich.table import Table\n"),
        ("unlearn_cli.engine.progress", "import typer\n"),
        ("unlearn_cli.workflows.forget", "from ..cli import output\n"),
    ],
)
def test_an_upward_import_is_caught(module, source):
    assert len(upward_imports(module, source)) == 1


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("unlearn_cli.cli.forget", "from unlearn_cli.workflows.forget import plan_forget\n"),
        ("unlearn_cli.workflows.forget", "from unlearn_cli.methods import get_method\n"),
        ("unlearn_cli.methods.surgery", "from unlearn_cli.engine.train import make_loader\n"),
        ("unlearn_cli.engine.checkpoint", "from unlearn_cli import __version__\n"),
        ("unlearn_cli.engine.train", "from .device import seed_everything\nimport torch\n"),
    ],
)
def test_a_downward_import_passes(module, source):
    assert upward_imports(module, source) == []
