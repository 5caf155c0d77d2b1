"""The engine's Progress interface drawn with Rich on stderr."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from unlearn_cli.cli.output import err, visible


class RichProgress:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: int) -> None:
        if self.quiet:
            return
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, status="")

    def advance(self, n: int = 1, status: str = "") -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n, status=status)

    def done(self, summary: str = "") -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if summary:
            self.log(summary)

    def log(self, message: str) -> None:
        if not self.quiet:
            err.print(visible(message), markup=False, highlight=False)
