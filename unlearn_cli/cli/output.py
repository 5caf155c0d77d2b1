"""Shared CLI plumbing: consoles, option aliases, error handling and result rendering.

stdout carries results only (a table, or one JSON document with --json); progress, logs and
warnings go to stderr.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
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
    help="Where the data lives: a torchvision MNIST root or a CelebA folder. MNIST defaults to "
    "the embedded copy.",
    metavar="DIR",
)


def in_panel(option: Any, name: str) -> Any:
    """A copy of a shared option (`DEVICE_OPTION`, `JSON_OPTION`, `DATA_DIR_OPTION`) listed
    under help panel `name`: `Annotated[str, in_panel(DEVICE_OPTION, "Data and device")]`."""
    option = copy.copy(option)
    option.rich_help_panel = name
    return option


DeviceOpt = Annotated[str, DEVICE_OPTION]
OptionalDeviceOpt = Annotated[
    str | None, DEVICE_OPTION
]  # None: a config or experiment file decides
JsonOpt = Annotated[bool, JSON_OPTION]
DataDirOpt = Annotated[Path | None, DATA_DIR_OPTION]


def examples(commands: tuple[str, ...]) -> str:
    """The end of a command's help: a few command lines a user can copy."""
    return "Examples:\n\n" + "\n\n".join(f"  {c}" for c in commands)


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
        err.print(f"error: {message}", markup=False, highlight=False)
    elif every_rank:
        sys.stderr.write(f"error: rank {env_rank()}: {message}\n")
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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a hash an auditor copies folds, never loses a digit
    for k, v in rows.items():
        table.add_row(k, str(v))
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
