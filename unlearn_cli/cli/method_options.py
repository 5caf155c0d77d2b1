"""The flags of the methods' settings, read from their dataclasses (methods/settings.py): a new
setting becomes a flag of `unlearn forget` with its help, its range and each method's default,
and needs no second list."""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Annotated, Any

import typer

from unlearn_cli.methods.settings import all_settings, choices_of, help_for

PANEL = "Method"
METAVARS = {float: "X", int: "N", str: "TEXT", bool: ""}
PATHS = {"judge"}  # settings that name a file: PATH says so where TEXT would not


def setting_option(name: str, kind: type) -> inspect.Parameter:
    """A keyword parameter `name` whose Typer option is the setting's flag, None by default
    (the method's own default applies)."""
    choices = choices_of(name)
    option = typer.Option(
        help=help_for(name),
        metavar="|".join(choices) if choices else "PATH" if name in PATHS else METAVARS[kind],
        rich_help_panel=PANEL,
        show_default=False,
    )
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],  # noqa: UP007  # built at run time
    )


def with_method_settings(command):
    """`command` with one option per method setting; it receives them as `settings`, a dict of
    those given (the rest are None)."""
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=hints[p.name])
        for p in inspect.signature(command).parameters.values()
        if p.name != "settings"
    ]
    names = list(all_settings())
    added = [setting_option(name, kind) for name, kind in all_settings().items()]
    required = [p for p in own if p.default is p.empty]  # the arguments, first
    optional = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in required]
    at = next((i + 1 for i, p in enumerate(optional) if p.name == "method"), len(optional))
    params = required + optional[:at] + added + optional[at:]  # the settings follow --method

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any):
        settings = {name: kwargs.pop(name, None) for name in names}
        return command(*args, settings=settings, **kwargs)

    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


METHOD_HELP = (
    "redirect (ours: forgets like retraining), surgery (the paper's), ascent, fu, uno (a class, "
    "with --judge), or retrain (from scratch on what is kept: the gold standard, at full cost)."
)
