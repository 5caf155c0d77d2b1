"""`unlearn audit`: check a ledger's receipts against the checkpoints they name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from unlearn_cli.cli.output import (
    JsonOpt,
    handle_errors,
    key_value_table,
    print_json,
    print_table,
    shown,
)

AUDIT_EXAMPLES = (
    "unlearn audit receipts.jsonl",
    "unlearn audit receipts.jsonl forgot.safetensors vae-mnist138.safetensors",
)


@handle_errors
def audit(
    ledger: Annotated[
        Path,
        typer.Argument(
            help="The ledger (JSON lines) that forget --ledger appends to.", metavar="LEDGER"
        ),
    ],
    checkpoints: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Check only the receipts of these checkpoints (found by sha256, so moved files "
            "are found too); an original checkpoint given is where every chain must start. "
            "\\[default: every receipt, against the file it names]",
            metavar="[CHECKPOINT]...",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a ledger's receipts against the checkpoints they name; exit 4 on a mismatch.

    For each receipt: the file's sha256 matches, its lineage holds the request, and its parent
    hashes chain back to the original."""
    from unlearn_cli.errors import EXIT_AUDIT
    from unlearn_cli.workflows.audit import audit_ledger

    report = audit_ledger(ledger, checkpoints or [])
    if json_out:
        print_json(report.to_dict())
    elif report.ok:
        rows = {
            "receipts checked": report.receipts,
            "checkpoints given": ", ".join(report.checkpoints) or "-",
            "result": "every sha256, request and chain matches",
        }
        print_table(key_value_table(f"audit of {shown(ledger)}", rows))
    else:
        title = (
            f"audit of {shown(ledger)}: {len(report.mismatches)} mismatches "
            f"({report.receipts} receipts checked)"
        )
        table = Table(title=title, title_justify="left")
        for col in ("line", "request", "checkpoint", "check", "problem"):
            table.add_column(col, justify="right" if col == "line" else "left")
        for m in report.mismatches:
            cells = (m.request_id, m.checkpoint, m.check, m.problem)
            table.add_row(str(m.line or "-"), *map(shown, cells))
        print_table(table)
    if not report.ok:
        raise typer.Exit(EXIT_AUDIT)
