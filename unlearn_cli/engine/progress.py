"""Progress reporting without a UI dependency: the engine calls these methods, the CLI draws."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total: int) -> None:
        """Begin a task of `total` steps."""

    def advance(self, n: int = 1, status: str = "") -> None:
        """`n` more steps done; `status` is a short live note such as the running loss."""

    def done(self, summary: str = "") -> None:
        """The task is finished; `summary` is logged."""

    def log(self, message: str) -> None:
        """A line for the user (stderr in the CLI)."""


class NullProgress:
    """Reports nothing; the default for library use and tests."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, n: int = 1, status: str = "") -> None:
        pass

    def done(self, summary: str = "") -> None:
        pass

    def log(self, message: str) -> None:
        pass
