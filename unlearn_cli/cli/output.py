"""Shared CLI plumbing: consoles, option aliases, error handling and result rendering.

stdout carries results only (a table, or one JSON document with --json); progress, logs and
warnings go to stderr.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import unicodedata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from unlearn_cli.errors import EXIT_FAILURE, UnlearnError
from unlearn_cli.launch import env_rank

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEVICE_OPTION = typer.Option(
    "--device", help="auto (CUDA when available), cpu, cuda or cuda:N.", metavar="DEVICE"
)
JSON_OPTION = typer.Option("--json", help="Print one JSON document on stdout.", metavar="")
DATA_DIR_OPTION = typer.Option(
    "--data-dir",
    help="Where the data lives: a torchvision MNIST root, a CelebA folder or a folder dataset "
    "(DIR/train/<class>/<image>). MNIST defaults to the embedded copy.",
    metavar="DIR",
)


def in_panel(option: Any, name: str) -> Any:
    """A copy of a shared option (`DEVICE_OPTION`, `JSON_OPTION`, `DATA_DIR_OPTION`) listed
    under help panel `name`: `Annotated[str, in_panel(DEVICE_OPTION, "Data and device")]`."""
    option = copy.copy(option)
    option.rich_help_panel = name
    return option


DeviceOpt = Annotated[str, DEVICE_OPTION]
OptionalDeviceOpt = Annotated[str | None, DEVICE_OPTION]  # None: a config or experiment decides
JsonOpt = Annotated[bool, JSON_OPTION]
DataDirOpt = Annotated[Path | None, DATA_DIR_OPTION]


def examples(commands: tuple[str, ...]) -> str:
    """The end of a command's help: a few command lines a user can copy."""
    return "Examples:\n\n" + "\n\n".join(f"  {c}" for c in commands)


# Characters that steer a terminal or reorder what it shows rather than print: beside the C0, DEL
# and C1 controls (category Cc), the bidirectional overrides and isolates and the line separators
_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


def visible(value: object) -> str:
    """`value` as text a terminal prints as it reads: control characters (an escape sequence,
    a newline, a bidi override) become escapes such as `\\x1b` and `\\u202e`."""
    text = str(value)
    if text.isprintable():  # the usual case, in one pass
        return text
    return "".join(_escaped(c) if _steers(c) else c for c in text)


def _steers(c: str) -> bool:
    return c in _INVISIBLE or unicodedata.category(c) == "Cc"


def _escaped(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def shown(value: object) -> str:
    """A string a user controls (an id, a file name, a path, a YAML key), made fit for a Rich
    markup string or table cell: printed as text, never as markup or a control sequence. --json
    output and the ledger keep the exact string."""
    return escape(visible(value))


def quiet_unless_main() -> None:
    """Under torchrun only rank 0 prints (results, progress, warnings and the errors every rank
    meets alike, such as bad input); the other ranks stay quiet."""
    if env_rank() != 0:
        out.quiet = err.quiet = True
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # for the life of the process


def fail(message: str, code: int, every_rank: bool = False) -> typer.Exit:
    """One line on stderr, and the exit code to leave with. `every_rank`: an error that may
    happen on one rank only (a crash), which a quiet rank prints too, naming itself."""
    if not err.quiet:
        err.print(f"error: {visible(message)}", markup=False, highlight=False)
    elif every_rank:
        sys.stderr.write(f"error: rank {env_rank()}: {visible(message)}\n")
    return typer.Exit(code)


def flag_of(setting: str) -> str:
    """The command-line flag of a setting: `batch_size` -> `--batch-size`."""
    return "--" + setting.replace("_", "-")


def handle_errors(fn):
    """Known errors become one line on stderr and their exit code; anything else exits 1, with
    the traceback only when UNLEARN_DEBUG is set."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UnlearnError as e:
            if os.environ.get("UNLEARN_DEBUG"):
                raise
            raise fail(e.named(flag_of), e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing was written")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as e:
            if os.environ.get("UNLEARN_DEBUG"):
                raise
            raise fail(
                f"unexpected {type(e).__name__}: {e} (rerun with UNLEARN_DEBUG=1 for the "
                "traceback, and please report it)",
                EXIT_FAILURE,
                every_rank=True,
            ) from None

    return wrapper


WIDE_LOG = 240  # a table piped into a file or a CI log gets room for every column


def table_width() -> int:
    """The width tables are drawn at: COLUMNS when set, the terminal's, or WIDE_LOG."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    return out.width if out.is_terminal else WIDE_LOG


def print_table(table: RenderableType) -> None:
    """A table (or text) drawn to fit `table_width()`: text wraps, no-wrap cells stay whole."""
    Console(width=table_width(), file=out.file).print(table)


def note(message: str) -> None:
    """A line on stderr (what was written, what is skipped), printed as text."""
    err.print(visible(message), markup=False, highlight=False)


def warn(message: str) -> None:
    """A warning on stderr, one line in one style everywhere: `warning: ...`, as errors read
    `error: ...`."""
    err.print(f"warning: {visible(message)}", style="yellow", markup=False, highlight=False)


def print_json(data: Any) -> None:
    """One strict JSON document on stdout: a value that is not finite is null, and the document
    says why under `not_finite` (RFC 8259 has no NaN)."""
    from unlearn_cli.engine.files import json_text

    sys.stdout.write(json_text(data) + "\n")
    sys.stdout.flush()


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    """Every key and value is printed as text (`shown`); the title must be markup-safe."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a hash an auditor copies folds, never loses a digit
    for k, v in rows.items():
        table.add_row(shown(k), shown(v))
    return table


def parse_int_list(text: str, flag: str) -> list[int]:
    """'1,3,8' -> [1, 3, 8], with a usage error naming the flag otherwise."""
    from unlearn_cli.errors import UsageError

    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError(f"{flag} is empty; give comma-separated integers such as 1,3,8")
    values = []
    for p in parts:
        if not p.lstrip("-").isdigit():
            raise UsageError(f"{flag}: {p!r} is not an integer")
        values.append(int(p))
    return values
