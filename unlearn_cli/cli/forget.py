"""`unlearn forget`: honour deletion requests against a checkpoint and write a new one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from unlearn_cli.cli.method_options import METHOD_HELP, PANEL, with_method_settings
from unlearn_cli.cli.output import (
    DATA_DIR_OPTION,
    DEVICE_OPTION,
    JSON_OPTION,
    handle_errors,
    in_panel,
    note,
    out,
    print_json,
    shown,
    visible,
    warn,
)

if TYPE_CHECKING:
    from unlearn_cli.workflows.forget import Plan

SHOWN_REQUESTS = 50  # rows of the result table; a batch can hold 10,000 requests


def default_out(src: Path, method: str) -> Path:
    return src.with_name(f"{src.stem}-forget-{method}.safetensors")


def check_outputs(
    target: Path,
    ledger: Path | None,
    checkpoint: Path,
    inputs: tuple[Path | None, ...],
    overwrite: bool,
) -> None:
    """`target` and `ledger` must be writable and overwrite no input (the manifests and the
    indices file; the ledger not `checkpoint` either, and `target` is checked against it once
    the plan has something to write); an existing default output needs `overwrite` (--out or
    --force)."""
    from unlearn_cli.engine.checkpoint import check_not_input, check_writable
    from unlearn_cli.errors import UsageError

    check_writable(target)
    check_not_input(target, inputs, "--out")
    if ledger is not None:
        check_writable(ledger)
        check_not_input(ledger, (checkpoint, *inputs, target), "--ledger")
    if target.exists() and not overwrite:
        raise UsageError(f"{target} exists; pass --out {target} or --force to overwrite it")


def result_table(summary: dict[str, Any], method: str, nothing_to_do: bool) -> Table:
    """The first SHOWN_REQUESTS requests with what became of each, and the totals."""
    dry_run = summary["dry_run"]
    requests = summary["requests"]
    table = Table(
        title=f"forget ({method})" + (" — dry run, nothing written" if dry_run else ""),
        title_justify="left",
    )
    for col in ("request", "selector", "samples", "status"):
        table.add_column(col, justify="right" if col == "samples" else "left")
    for r in requests[:SHOWN_REQUESTS]:
        table.add_row(shown(r["id"]), shown(r["selector"]), str(r["selected"] or "-"), r["status"])
    if len(requests) > SHOWN_REQUESTS:
        table.add_row(f"... {len(requests) - SHOWN_REQUESTS} more", "", "", "--json lists all")
    table.add_section()
    table.add_row(
        "total",
        "",
        str(summary["forget_samples"]),
        "nothing to do" if nothing_to_do else f"{summary['retain_samples']} retained",
    )
    return table


def run_and_save(ckpt, plan: Plan, algo, cfg, dev, target: Path, ledger, overwrite: bool) -> dict:
    """Run the method with a Rich progress display, write the child (and the receipts); returns
    what the result adds: the output, its sha256, the time and the resolved hyperparameters."""
    from unlearn_cli.cli.progress import RichProgress
    from unlearn_cli.workflows.forget import RETRAIN_DRIFT, run_forget, save_forget, written
    from unlearn_cli.workflows.recheck import came_back

    child = run_forget(ckpt, plan, algo, cfg, dev, RichProgress())
    save_forget(child, ckpt, plan, target, ledger, overwrite=overwrite)
    result = written(child, target)
    if reason := child.lineage[-1]["no_op"]:
        note(
            f"warning: {algo.name} {reason}: this forget looks like it did nothing (recorded "
            "as no_op in the lineage)"
        )
    if line := retrained_line(child.lineage[-1]["stats"]):
        note(line)
    if line := membership_line(child.lineage[-1]["stats"]):
        warn(line)
    drift = result["cumulative_retain_drift"]
    if drift > RETRAIN_DRIFT:
        warn(
            f"over {len(child.lineage)} forget operation(s) the retained data's loss "
            f"has risen {drift:.1%} (above {RETRAIN_DRIFT:.0%}); retraining from scratch "
            "(`unlearn forget --method retrain`) would restore it"
        )
    if back := came_back(result["recheck"]):
        warn(comeback_line(back))
    return result


def retrained_line(stats: dict) -> str | None:
    """The one line saying that redirect retrained from scratch (`retraining_is_cheaper`), or
    None."""
    if not stats.get("retrained"):
        return None
    return (
        "the model memorises its samples, and raising this request's to their unseen level "
        "could cost more than retraining: retrained from scratch on the retained data instead "
        "(recorded as retrained in the lineage)"
    )


def membership_line(stats: dict) -> str | None:
    """The one-line warning of memorised samples that step 3 left short of their unseen
    level (`membership.shortfall`), or None."""
    if stats.get("membership_reached") is not False:
        return None
    return (
        f"the forgotten samples are still explained {stats['membership_short']:.1f} nats "
        f"better than they would be unseen, on average, after {stats['membership_steps']} "
        "steps, which a membership attack can read: raise --match-steps, or retrain "
        "(`unlearn forget --method retrain`) (recorded as membership_short in the lineage)"
    )


def comeback_line(back: list[dict]) -> str:
    """The one-line warning of earlier requests coming back, the furthest first."""
    from unlearn_cli.workflows.recheck import COMEBACK

    first, more = back[0], len(back) - 1
    now, after, before = (f"{first[k]:.1f}" for k in ("now", "after", "before"))
    where = (
        f"{first['comeback']:.0%} of the way from {after} after it was forgotten back to "
        f"{before} before (above {COMEBACK:.0%})"
        if first["comeback"] < 1
        else f"back to or below the {before} before it was forgotten ({after} after)"
    )
    return (
        f"request {first['id']} ({first['selector']}) is coming back: its images' -ELBO is "
        f"{now} nats, {where}"
        + (f", and {more} more earlier request(s)" if more else "")
        + "; retraining from scratch (`unlearn forget --method retrain`) would forget it again "
        "(recorded as recheck in the lineage)"
    )


WHAT = "What to forget"
OUTPUT = "Output"
DATA = "Data and device"

FORGET_EXAMPLES = (
    "unlearn forget vae-mnist138.safetensors --class 1",
    "unlearn forget vae-mnist138.safetensors --class 1 --method surgery",
    "unlearn forget vae-celeba.safetensors --attribute Male --data-dir ~/data/celeba",
    "unlearn forget vae-mnist138.safetensors --manifest requests.yaml --ledger receipts.jsonl",
    "unlearn forget vae-mnist138.safetensors --indices 7,17,31 --dry-run",
)


@handle_errors
@with_method_settings
def forget(
    checkpoint: Annotated[
        Path, typer.Argument(help="The VAE checkpoint to unlearn from.", metavar="CHECKPOINT")
    ],
    class_: Annotated[
        list[str] | None,
        typer.Option(
            "--class",
            help="MNIST digit or class folder to forget (repeatable).",
            metavar="CLASS",
            rich_help_panel=WHAT,
        ),
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            help="Attribute (CelebA, attributes.csv) whose samples to forget, e.g. Male "
            "(repeatable).",
            metavar="NAME",
            rich_help_panel=WHAT,
        ),
    ] = None,
    indices: Annotated[
        str | None,
        typer.Option(
            help="Training-sample identities, e.g. 12,40,77.", metavar="IDS", rich_help_panel=WHAT
        ),
    ] = None,
    indices_file: Annotated[
        Path | None,
        typer.Option(
            help="File of identities, CelebA file names or paths relative to a folder dataset, "
            "one per line or comma-separated.",
            metavar="FILE",
            rich_help_panel=WHAT,
        ),
    ] = None,
    manifest: Annotated[
        list[Path] | None,
        typer.Option(
            help="YAML batch of deletion requests (docs/manifests.md); repeatable, all applied "
            "as one operation.",
            metavar="FILE",
            rich_help_panel=WHAT,
        ),
    ] = None,
    method: Annotated[
        str, typer.Option(help=METHOD_HELP, metavar="NAME", rich_help_panel=PANEL)
    ] = "redirect",
    device: Annotated[str, in_panel(DEVICE_OPTION, DATA)] = "auto",
    data_dir: Annotated[Path | None, in_panel(DATA_DIR_OPTION, DATA)] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Checkpoint to write. \\[default: INPUT-forget-METHOD.safetensors]",
            metavar="FILE",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(
            help="Append one JSON receipt line per request.",
            metavar="FILE",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what each request selects; write nothing.",
            metavar="",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite the default output if it exists.",
            metavar="",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    in_place: Annotated[
        bool,
        typer.Option(
            "--in-place",
            help="Replace the checkpoint itself (atomically; the receipt keeps its sha256). "
            "\\[default: --out may not be the checkpoint]",
            metavar="",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    json_out: Annotated[bool, in_panel(JSON_OPTION, OUTPUT)] = False,
    settings: dict[str, Any] | None = None,
) -> None:
    """Make a VAE forget a class, an attribute or individual samples, and record it."""
    from unlearn_cli.cli.selectors import all_requests
    from unlearn_cli.engine.checkpoint import check_not_input, load_checkpoint
    from unlearn_cli.engine.device import resolve_device
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.workflows.forget import plan_forget, summarise

    manifests = manifest or []
    requests = all_requests(class_ or [], attribute or [], indices, indices_file, manifests)
    algo = get_method(method)
    ckpt = load_checkpoint(checkpoint, "vae")
    cfg = configure(algo, ckpt, settings or {})
    dev = resolve_device(device)
    target = out_path or (checkpoint if in_place else default_out(checkpoint, method))
    if in_place:  # through a symlink, the file it names is replaced and the link kept
        target = target.resolve()
    overwrite = out_path is not None or force or in_place
    judge = (settings or {}).get("judge")  # uno's judge checkpoint: an input too
    if not dry_run:
        inputs = (*manifests, indices_file, Path(judge) if judge else None)
        check_outputs(target, ledger, checkpoint, inputs, overwrite)
    plan = plan_forget(ckpt, requests, str(data_dir) if data_dir else None)
    if not dry_run and not plan.nothing_to_do and not in_place:  # a rerun that writes nothing
        hint = ", or pass --in-place to replace the checkpoint"  # may name it
        check_not_input(target, (checkpoint,), "--out", hint)
    for line in plan.notes:  # a changed folder, said before any work
        note(line)
    for r in plan.skipped:
        note(f"request {r.id}: already forgotten (in the checkpoint's lineage); skipped")
    summary = summarise(checkpoint, method, dry_run, requests, plan, dev)
    if not dry_run and not plan.nothing_to_do:
        summary.update(run_and_save(ckpt, plan, algo, cfg, dev, target, ledger, overwrite))
        note(f"wrote {target}")
    elif plan.nothing_to_do:
        note(f"nothing to do: {plan.why_nothing}; nothing written")
    if json_out:
        print_json(summary)
        return
    out.print(result_table(summary, method, plan.nothing_to_do))
    if summary["out"]:
        out.print(
            visible(f"wrote {summary['out']} in {summary['wall_seconds']:.2f} s on {dev}"),
            markup=False,
            highlight=False,
        )
