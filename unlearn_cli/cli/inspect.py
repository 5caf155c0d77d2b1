"""`unlearn inspect`: what a checkpoint is, what it was trained on, and its whole lineage."""

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

SHOWN_REQUESTS = 50  # rows of the request table; --json lists every request


INSPECT_EXAMPLES = (
    "unlearn inspect forgot.safetensors",
    "unlearn inspect forgot.safetensors --json",
)


@handle_errors
def inspect(
    checkpoint: Annotated[
        Path,
        typer.Argument(help="The checkpoint to describe (VAE or judge).", metavar="CHECKPOINT"),
    ],
    json_out: JsonOpt = False,
) -> None:
    """Show what a checkpoint is, what it was trained on, and every forget in its lineage."""
    from unlearn_cli.workflows.inspect import describe_checkpoint

    info = describe_checkpoint(checkpoint)
    if json_out:
        print_json(info)
        return
    training = info["training"] or {}
    print_table(
        key_value_table(
            f"checkpoint {shown(info['checkpoint'])}",
            {
                "kind": info["kind"],
                "sha256": info["sha256"],
                "size": f"{info['size_bytes']:,} bytes",
                "created": f"{info['created']} by unlearn {info['tool_version']}",
                "model": ", ".join(f"{k}={v}" for k, v in (info["model_config"] or {}).items()),
                "trained on": f"{info['dataset']}, {info['num_samples']} samples",
                "excluded": ", ".join(info["excluded_requests"]) or "-",
                "train ids sha256": info["train_ids_sha256"],
                "training": ", ".join(f"{k}={v}" for k, v in training.items()),
                "train seconds": info["train_seconds"],
                "metrics": ", ".join(f"{k}={v}" for k, v in info["metrics"].items()) or "-",
                "forget operations": len(info["lineage"]),
                "original sha256": info["original_sha256"] or "(this is an original)",
                "problems": "; ".join(info["problems"]) or "none",
            },
        )
    )
    if info["lineage"]:
        print_table(lineage_table(info["lineage"]))
        print_table(request_table(info["lineage"]))


def lineage_table(lineage: list[dict]) -> Table:
    table = Table(title="lineage (oldest first)", title_justify="left")
    for col in ("#", "created", "method", "requests", "forgotten", "retained", "seconds"):
        numeric = col not in ("created", "method")
        table.add_column(
            col, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold"
        )
    table.add_column("parent sha256", overflow="fold")  # folds onto more lines, never cut
    for op in lineage:
        table.add_row(
            str(op["number"]),
            *map(shown, (op.get("created", "-"), method_of(op))),
            str(len(op["requests"])),
            *map(shown, (op.get(k, "-") for k in ("forgotten_count", "retain_count"))),
            shown(op.get("wall_seconds", "-")),
            shown(op["parent_sha256"]),
        )
    return table


def method_of(op: dict) -> str:
    """The operation's method, `redirect → retrain` where redirect retrained from scratch
    (words no longer than the method's name, so a narrow column wraps them whole)."""
    retrained = (op.get("stats") or {}).get("retrained")
    return f"{op.get('method', '-')}{' → retrain' if retrained else ''}"


def request_table(lineage: list[dict]) -> Table:
    rows = [(op["number"], r) for op in lineage for r in op["requests"]]
    table = Table(title="requests honoured", title_justify="left")
    for col in ("#", "request", "selector", "received", "note"):
        table.add_column(col, justify="right" if col == "#" else "left", overflow="fold")
    for n, r in rows[:SHOWN_REQUESTS]:
        cells = (r["id"], r["selector"], r.get("received") or "", r.get("note") or "")
        table.add_row(str(n), *map(shown, cells))
    if len(rows) > SHOWN_REQUESTS:
        table.add_row("", f"... {len(rows) - SHOWN_REQUESTS} more (--json lists all)", "", "", "")
    return table
