"""The `unlearn` command: one Typer app composed of one module per subcommand.

Nothing here imports torch at start-up, so `unlearn --help` answers at once.
"""

from __future__ import annotations

import typer

from unlearn_cli import __version__
from unlearn_cli.cli.audit import AUDIT_EXAMPLES, audit
from unlearn_cli.cli.compare import COMPARE_EXAMPLES, compare
from unlearn_cli.cli.evaluate import EVALUATE_EXAMPLES, evaluate
from unlearn_cli.cli.forget import FORGET_EXAMPLES, forget
from unlearn_cli.cli.inspect import INSPECT_EXAMPLES, inspect
from unlearn_cli.cli.output import examples, quiet_unless_main
from unlearn_cli.cli.train import TRAIN_EXAMPLES, train
from unlearn_cli.launch import launched

app = typer.Typer(
    name="unlearn",
    help="Make a trained image generator forget part of its training data, and measure how "
    "well it forgot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(no_args_is_help=False, epilog=examples(TRAIN_EXAMPLES))(train)
app.command(epilog=examples(FORGET_EXAMPLES))(forget)
app.command(epilog=examples(EVALUATE_EXAMPLES))(evaluate)
app.command(epilog=examples(COMPARE_EXAMPLES))(compare)
app.command(epilog=examples(INSPECT_EXAMPLES))(inspect)
app.command(epilog=examples(AUDIT_EXAMPLES))(audit)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"unlearn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Make a trained image generator forget part of its training data."""
    quiet_unless_main()


def main() -> None:
    try:
        app()
    except SystemExit as end:
        if launched() and end.code in (0, None):  # under torchrun, clean ends leave together
            from unlearn_cli import distributed  # imports torch: not at start-up

            distributed.leave(together=True)
        raise
