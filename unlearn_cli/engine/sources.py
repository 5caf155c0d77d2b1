"""The digest of the code a forget runs, for the cache keys of `unlearn compare` and the
benchmark scripts: a cached run made by other code is never served as current. Originals and
judges are keyed by the training code's digest (`training_digest`).

A method's digest covers its own module, the `unlearn_cli.methods` modules it imports, and what
every method shares: the package's top-level modules, `data`, `engine`, `models` and the forget
workflow. It leaves out the other methods (an edit of redirect does not rerun retraining), the
settings file (the resolved settings are in the key already), and what a forget never runs:
the metrics, the other workflows and the command line.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # the unlearn_cli directory
SHARED = ("data", "engine", "models")  # subpackages every method runs
FORGET_WORKFLOW = "workflows/forget.py"  # plans the request and runs the method
SETTINGS = "methods/settings.py"  # defaults only: their resolved values are in the key
DIGEST_CHARS = 16  # 64 bits: two versions of the code never meet in one cache by chance


def module_file(name: str) -> Path:
    """The source file of the unlearn_cli module `name` (dotted), which need not exist."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def method_files(module: str) -> set[Path]:
    """`module`'s file and those of the unlearn_cli.methods modules it imports at its top
    level, transitively: a method's own code."""
    seen: set[Path] = set()
    todo = [module_file(module)]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for node in ast.parse(path.read_bytes()).body:
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module == "unlearn_cli.methods":  # names that may be submodules
                todo += [module_file(f"{node.module}.{alias.name}") for alias in node.names]
            elif node.module.startswith("unlearn_cli.methods."):
                todo.append(module_file(node.module))
    return seen


def training_files() -> set[Path]:
    """The files that train a model, which every method runs too: the package's top-level
    modules and its SHARED subpackages."""
    files = set(PACKAGE.glob("*.py"))
    for sub in SHARED:
        files |= set((PACKAGE / sub).rglob("*.py"))
    return files


@functools.cache
def code_digest(module: str) -> str:
    """The digest of the code a forget with the method in `module` runs (module docstring);
    computed once per process."""
    forget = {PACKAGE / FORGET_WORKFLOW, PACKAGE / "methods" / "__init__.py"}
    return digest_of((method_files(module) - {PACKAGE / SETTINGS}) | training_files() | forget)


@functools.cache
def training_digest() -> str:
    """The digest of the code that trains an original or a judge (`training_files`)."""
    return digest_of(training_files())


def digest_of(files: set[Path]) -> str:
    """sha256 over each file's path in the package and its bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        body = path.read_bytes()
        name = path.relative_to(PACKAGE).as_posix().encode()
        digest.update(len(name).to_bytes(4, "big") + name + len(body).to_bytes(8, "big") + body)
    return digest.hexdigest()[:DIGEST_CHARS]
