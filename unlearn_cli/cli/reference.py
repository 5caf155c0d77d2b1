"""The CLI reference page (docs/cli.md), written from the commands' own signatures (names, help,
panels, defaults, examples) so that it cannot drift from `--help`:
`python -m unlearn_cli.cli.reference > docs/cli.md`; a test checks that the page is current."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import typer


def flag(name: str, info: Any) -> str:
    """The option's flag as a user types it (Annotated style keeps the first name in default)."""
    decls = [d for d in (info.default, *(info.param_decls or ())) if isinstance(d, str)]
    if isinstance(info, typer.models.ArgumentInfo):
        return info.metavar or name.upper()
    flags = [d for d in decls if d.startswith("-")] or ["--" + name.replace("_", "-")]
    return ", ".join(flags)


def row(name: str, param: inspect.Parameter, info: Any) -> str:
    """One table row: the flag with its metavar, then the help and the default."""
    text = (info.help or "").replace("\\[", "[")
    metavar = "" if param.annotation is bool or info.metavar == "" else info.metavar
    shown = param.default not in (None, False, inspect.Parameter.empty)
    if shown and info.show_default is not False and "[default:" not in text:
        text += f" [default: {param.default}]"
    usage = flag(name, info) + (f" {metavar}" if metavar and "--" in flag(name, info) else "")
    return f"| `{usage.replace('|', chr(92) + '|')}` | {text} |"


def parameters(callback: Any) -> list[tuple[str, inspect.Parameter, Any]]:
    """(name, parameter, its Typer OptionInfo or ArgumentInfo) for every parameter a user sets."""
    hints = typing.get_type_hints(callback, include_extras=True)
    found = []
    for name, param in inspect.signature(callback).parameters.items():
        annotation = hints.get(name, param.annotation)
        extras = getattr(annotation, "__metadata__", ())
        info = next((m for m in extras if isinstance(m, typer.models.ParameterInfo)), None)
        if info is not None:
            base = typing.get_args(annotation)[0]
            found.append((name, param.replace(annotation=base), info))
    return found


def command_section(name: str, command: Any) -> list[str]:
    paragraphs = inspect.cleandoc(command.callback.__doc__ or "").split("\n\n")
    lines = [f"## `unlearn {name}`", "", *(p.replace("\n", " ") for p in paragraphs), ""]
    panels: dict[str, list[str]] = {}
    for setting, param, info in parameters(command.callback):
        is_argument = isinstance(info, typer.models.ArgumentInfo)
        panel = "Arguments" if is_argument else info.rich_help_panel or "Options"
        panels.setdefault(panel, []).append(row(setting, param, info))
    for panel, rows in panels.items():
        lines += [f"**{panel}**", "", "| option | meaning |", "| --- | --- |", *rows, ""]
    if command.epilog:
        examples = [e.strip() for e in command.epilog.split("\n\n")[1:]]
        lines += ["Examples:", "", "```bash", *examples, "```", ""]
    return lines


def reference() -> str:
    from unlearn_cli.cli import app

    lines = [
        "# Command-line reference",
        "",
        "Every command and option of `unlearn`, written from the commands themselves",
        "(`python -m unlearn_cli.cli.reference > docs/cli.md`); `unlearn CMD -h` prints the same.",
        "Exit codes: 0 success, 1 unexpected failure, 2 bad input or usage, 3 a quality gate of",
        "`evaluate` failed, 4 `audit` found a mismatch.",
        "",
    ]
    for command in app.registered_commands:
        name = str(command.name or getattr(command.callback, "__name__", ""))
        lines += command_section(name, command)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
