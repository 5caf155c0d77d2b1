"""`unlearn forget`: honour deletion requests against a checkpoint and write a new one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from unlearn_cli.cli.output import (
    DataDirOpt,
    DeviceOpt,
    JsonOpt,
    err,
    handle_errors,
    out,
    print_json,
)
from unlearn_cli.methods.settings import help_for

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
    """`target` and `ledger` must be writable and overwrite no input (`checkpoint`, the
    manifests and the indices file); an existing default output needs `overwrite` (--out or
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
        table.add_row(r["id"], r["selector"], str(r["selected"] or "-"), r["status"])
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

    child = run_forget(ckpt, plan, algo, cfg, dev, RichProgress())
    save_forget(child, ckpt, plan, target, ledger, overwrite=overwrite)
    result = written(child, target)
    drift = result["cumulative_retain_drift"]
    if drift > RETRAIN_DRIFT:
        note(
            f"warning: over {len(child.lineage)} forget operation(s) the retained data's loss "
            f"has risen {drift:.1%} (above {RETRAIN_DRIFT:.0%}); retraining from scratch "
            "(`unlearn forget --method retrain`) would restore it"
        )
    return result


def note(message: str) -> None:
    """A line on stderr, printed as it is."""
    err.print(message, markup=False, highlight=False)


@handle_errors
def forget(
    checkpoint: Annotated[Path, typer.Argument(help="The VAE checkpoint to unlearn from.")],
    class_: Annotated[
        list[str] | None,
        typer.Option("--class", help="MNIST digit or class folder to forget (repeatable)."),
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            help="Attribute (CelebA, attributes.csv) whose samples to forget, e.g. Male "
            "(repeatable)."
        ),
    ] = None,
    indices: Annotated[
        str | None, typer.Option(help="Training-sample identities, e.g. 12,40,77.")
    ] = None,
    indices_file: Annotated[
        Path | None,
        typer.Option(
            help="File of identities, CelebA file names or paths relative to a folder dataset, "
            "one per line or comma-separated."
        ),
    ] = None,
    manifest: Annotated[
        list[Path] | None,
        typer.Option(
            help="YAML batch of deletion requests (see README); repeatable, all applied as one "
            "operation."
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="redirect (ours, forgets like retraining; see README), surgery (the paper), "
            "ascent, fu or retrain."
        ),
    ] = "redirect",
    params: Annotated[str | None, typer.Option(help=help_for("params"))] = None,
    projection: Annotated[str | None, typer.Option(help=help_for("projection"))] = None,
    lr: Annotated[float | None, typer.Option(help=help_for("lr"))] = None,
    batch_size: Annotated[int | None, typer.Option(help=help_for("batch_size"))] = None,
    epochs: Annotated[int | None, typer.Option(help=help_for("epochs"))] = None,
    retain_epochs: Annotated[float | None, typer.Option(help=help_for("retain_epochs"))] = None,
    covariance: Annotated[str | None, typer.Option(help=help_for("covariance"))] = None,
    targets: Annotated[str | None, typer.Option(help=help_for("targets"))] = None,
    npo_weight: Annotated[float | None, typer.Option(help=help_for("npo_weight"))] = None,
    npo_beta: Annotated[float | None, typer.Option(help=help_for("npo_beta"))] = None,
    steps: Annotated[int | None, typer.Option(help=help_for("steps"))] = None,
    alpha: Annotated[float | None, typer.Option(help=help_for("alpha"))] = None,
    repair_steps: Annotated[int | None, typer.Option(help=help_for("repair_steps"))] = None,
    seed: Annotated[int | None, typer.Option(help=help_for("seed"))] = None,
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Checkpoint to write. \\[default: INPUT-forget-METHOD.safetensors]"
        ),
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="Append one JSON receipt line per request.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show what each request selects; write nothing.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite the default output if it exists.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Make a VAE forget a class, an attribute or individual samples, and record it."""
    from unlearn_cli.cli.selectors import all_requests
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.engine.device import resolve_device
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.workflows.forget import plan_forget, summarise

    manifests = manifest or []
    requests = all_requests(class_ or [], attribute or [], indices, indices_file, manifests)
    algo = get_method(method)
    ckpt = load_checkpoint(checkpoint, "vae")
    options = dict(
        params=params,
        projection=projection,
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        retain_epochs=retain_epochs,
        covariance=covariance,
        targets=targets,
        npo_weight=npo_weight,
        npo_beta=npo_beta,
        steps=steps,
        alpha=alpha,
        repair_steps=repair_steps,
        seed=seed,
    )
    cfg = configure(algo, ckpt, options)
    dev = resolve_device(device)
    target = out_path or default_out(checkpoint, method)
    overwrite = out_path is not None or force
    if not dry_run:
        check_outputs(target, ledger, checkpoint, (*manifests, indices_file), overwrite)
    plan = plan_forget(ckpt, requests, str(data_dir) if data_dir else None)
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
            f"wrote {summary['out']} in {summary['wall_seconds']:.2f} s on {dev}",
            markup=False,
            highlight=False,
        )
