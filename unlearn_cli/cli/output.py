"""Shared CLI plumbing: consoles, option aliases, error handling and result rendering.

stdout carries results only (a table, or one JSON document with --json); progress, logs and
warnings go to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from unlearn_cli.errors import EXIT_FAILURE, UnlearnError
from unlearn_cli.launch import env_rank

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

_DEVICE = typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N.")
DeviceOpt = Annotated[str, _DEVICE]
OptionalDeviceOpt = Annotated[str | None, _DEVICE]  # None: a config or experiment file decides
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the data lives: a torchvision MNIST root, a CelebA folder or a folder "
        "dataset (DIR/train/<class>/<image>). MNIST defaults to the embedded copy.",
    ),
]


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


def print_table(table: Table) -> None:
    """Tables fit the terminal; piped into a file or a CI log they get room for every column."""
    console = out if out.is_terminal else Console(soft_wrap=True, width=240)
    console.print(table)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
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
