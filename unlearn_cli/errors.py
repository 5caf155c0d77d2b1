"""One exception family. Every error a user can cause says what is wrong and what to do about it.

The CLI turns `UnlearnError` into one line on stderr and its `exit_code`; anything else is a bug
and exits 1 (with a traceback only when UNLEARN_DEBUG is set).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

EXIT_FAILURE = 1  # unexpected failure (a bug, or the machine ran out of something)
EXIT_USAGE = 2  # bad input or usage; Typer uses 2 for a bad parameter too
EXIT_GATE = 3  # `unlearn evaluate`: a quality gate (max_fratio, ...) failed
EXIT_AUDIT = 4  # `unlearn audit`: a receipt does not match the checkpoints


class UnlearnError(Exception):
    """Base of every error a user can cause and fix.

    Below the CLI a message names the setting at fault by its own name (`lr`, `batch_size`),
    never by a flag: `setting` holds it apart from the message, and `named` lets each caller
    call it what its user knows it as (`--lr` on the command line, `lr:` in a YAML file)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.message = message
        self.setting = setting

    def __str__(self) -> str:
        return self.named(str)

    def named(self, name_of: Callable[[str], str]) -> str:
        """The message, led by the setting at fault as `name_of` calls it."""
        return f"{name_of(self.setting)} {self.message}" if self.setting else self.message


class UsageError(UnlearnError):
    """A flag, value or combination of them that cannot work."""


class DataError(UnlearnError):
    """A data directory, data file or forget-set selection that cannot be used."""


class ConfigError(UnlearnError):
    """A YAML config or manifest that is malformed; lists every problem found in the file."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {'; '.join(problems)}")


class CheckpointError(UnlearnError):
    """A file that is not a usable checkpoint of the expected kind."""


class OutputError(UnlearnError):
    """An output path that cannot be written."""


class DivergedError(UnlearnError):
    """A run whose loss or weights stopped being finite (NaN, inf); nothing was written."""


class ResourceError(UnlearnError):
    """The machine ran out of something (disk space) while writing; nothing was written."""

    exit_code = EXIT_FAILURE


def suggest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """' (did you mean: A, B?)' for the closest choices, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n)]
    return f" (did you mean: {', '.join(close)}?)" if close else ""
