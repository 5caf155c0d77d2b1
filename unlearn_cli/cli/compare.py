"""`unlearn compare`: the paper's Table 1 from one command, or a table of existing checkpoints."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from unlearn_cli import defaults
from unlearn_cli.cli.output import (
    JsonOpt,
    OptionalDeviceOpt,
    handle_errors,
    note,
    print_json,
    print_table,
    shown,
    table_width,
    warn,
)

FORMATS = {  # digits after the point, per column
    "privacy.fratio": 3,
    "utility.is": 3,
    "utility.fid": 3,
    "utility.precision": 3,
    "utility.pixel_precision": 3,
    "utility.recall": 3,
    "utility.fid_reference": 3,
    "cost.seconds": 2,
    "cost.percent_of_retrain": 1,
    "utility.retain_elbo": 1,
    "utility.forget_elbo": 1,
    "privacy.mia_auc": 3,
    "privacy.relearn_fratio_fewshot": 3,
    "privacy.relearn_mia_auc_fewshot": 3,
    "privacy.relearn_fratio_benign": 3,
    "privacy.relearn_mia_auc_benign": 3,
}
GROUPS = {"privacy": "PRIVACY", "utility": "UTILITY", "cost": "COST"}
ARROWS = {-1: " ↓", 1: " ↑", 0: "", "retrain": " ≈R"}  # ≈R: closest to RETRAIN's is best


MISS = "a seed misses the bar of `unlearn evaluate --like-reference` against its RETRAIN"
FLOOR = "FLOOR"  # the row of RETRAIN's seed-to-seed spread, drawn under RETRAIN


def missed(report: dict) -> bool:
    return any(c and c.get("miss") for r in report["rows"] for c in r["cells"].values())


def number(value: float, digits: int) -> str:
    """`value` with `digits` decimals, never `-0.000`."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def marks(cell: dict) -> list[str]:
    """✗ for a miss of the bar, ≈ within the floor (reports before them have neither key)."""
    return [mark for mark, key in (("✗", "miss"), ("≈", "within_floor")) if cell.get(key)]


def cell_text(cell: dict | None, dotted: str) -> str:
    if cell is None:
        return "-"
    digits = FORMATS[dotted]
    text = number(cell["mean"], digits)
    if len(cell["values"]) > 1:
        text += f" ({number(cell['std'], digits)})"
    return " ".join([text, *marks(cell)])


def floor_row(report: dict) -> dict | None:
    """RETRAIN's seed-to-seed spread as a row of cells, or None with one seed."""
    floor = report.get("floor") or {}
    if not floor:
        return None
    cells = {
        dotted: {"mean": value, "std": 0.0, "values": [value], "best": False}
        for dotted, value in floor.items()
    }
    return {"label": FLOOR, "title": "floor (seed to seed)", "cells": cells}


def shown_rows(report: dict) -> list[dict]:
    rows = list(report["rows"])
    extra = floor_row(report)
    return rows if extra is None else [*rows, extra]


def used_columns(report: dict, wide: bool = True) -> list[tuple]:
    from unlearn_cli.workflows.tables import COLUMNS, DECIDING

    return [
        c
        for c in COLUMNS
        if (wide or c[0] in DECIDING)
        and any(r["cells"].get(c[0]) is not None for r in report["rows"])
    ]


def caption(report: dict, wide: bool) -> str:
    """What the table's marks mean, one short line each."""
    from unlearn_cli.workflows.relearn import FEW_SHOT

    lines = [
        "mean (std) over seeds; bold: best unlearning method per column (≈R: closest to "
        "RETRAIN's); RETRAIN is the reference"
    ]
    if missed(report):
        lines.append(f"✗: {MISS}")
    if report.get("floor"):
        lines.append(
            "floor: how far RETRAIN's seeds differ; ≈ (in a cell): as close to RETRAIN as "
            "another retraining (mean distance to the same seed's RETRAIN within the floor)"
        )
    if report.get("relearn_steps"):
        lines.append(
            f"relearned: fratio (samples: MIA AUC) after {report['relearn_steps']} steps of "
            f"fine-tuning on {FEW_SHOT} forgotten images; benign: on retained ones; RETRAIN's "
            "row: the same attack on retraining"
        )
    hidden = [c[1] for c in used_columns(report) if c not in used_columns(report, wide)]
    if hidden:
        lines.append(
            f"--wide adds {', '.join(hidden[:-1])} and {hidden[-1]}"
            if len(hidden) > 1
            else f"--wide adds {hidden[0]}"
        )
    return "\n".join(lines)


def rich_table(report: dict, columns: list[tuple], titled: bool = True) -> Table:
    title = report["experiment"] or "comparison"
    title = f"{title}: {report.get('dataset') or ''} forget {report['target'] or ''}"
    table = Table(title=shown(title) if titled else None, title_justify="left")
    # the one column that wraps when the terminal is narrow, a word a line at the least
    table.add_column("", min_width=longest_word(report))
    for _, header, direction in columns:
        table.add_column(f"{header}{ARROWS[direction]}", justify="right", no_wrap=True)
    for row in shown_rows(report):
        cells = []
        for dotted, _, _ in columns:
            cell = row["cells"].get(dotted)
            text = shown(cell_text(cell, dotted))
            cells.append(f"[bold]{text}[/bold]" if cell and cell["best"] else text)
        section = row["label"] == "BEFORE" or (row["label"] == "RETRAIN" and report.get("floor"))
        table.add_row(shown(row["title"]), *cells, end_section=bool(section))
    return table


def longest_word(report: dict) -> int:
    return max(len(word) for row in shown_rows(report) for word in row["title"].split())


def tables_that_fit(report: dict, wide: bool, width: int) -> list[Table]:
    """The comparison as one table, or, where the terminal is too narrow for every column
    whole, as several tables of consecutive columns, each with the row titles."""
    edge = 3  # a column's padding and its border

    def needs(column: tuple) -> int:  # the column's width with every number whole
        dotted, header, direction = column
        texts = [cell_text(r["cells"].get(dotted), dotted) for r in shown_rows(report)]
        return max(len(f"{header}{ARROWS[direction]}"), *map(len, texts)) + edge

    parts: list[list[tuple]] = [[]]
    used = 1 + longest_word(report) + edge
    for column in used_columns(report, wide):
        if parts[-1] and used + needs(column) > width:
            parts.append([])
            used = 1 + longest_word(report) + edge
        parts[-1].append(column)
        used += needs(column)
    # the title once, above the first: a narrow later table would wrap it
    return [rich_table(report, columns, titled=i == 0) for i, columns in enumerate(parts)]


def markdown(report: dict) -> str:
    columns = used_columns(report)
    head = [""] + [f"{GROUPS[d.split('.')[0]]} {h}{ARROWS[s]}" for d, h, s in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in shown_rows(report):
        cells = []
        for dotted, _, _ in columns:
            cell = row["cells"].get(dotted)
            text = cell_text(cell, dotted)
            cells.append(f"**{text}**" if cell and cell["best"] else text)
        lines.append("| " + " | ".join([row["title"], *cells]) + " |")
    notes = caption(report, wide=True).splitlines()[1:]  # what the marks mean
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def csv_text(report: dict) -> str:
    """One line per row and metric, the floor row's included; `mark` is the cell's marks."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["row", "metric", "mean", "std", "n", "values", "mark"])
    for row in shown_rows(report):
        for dotted, _, _ in used_columns(report):
            cell = row["cells"].get(dotted)
            if cell is not None:
                writer.writerow(
                    [
                        row["title"],
                        dotted,
                        cell["mean"],
                        cell["std"],
                        len(cell["values"]),
                        " ".join(map(str, cell["values"])),
                        " ".join(marks(cell)),
                    ]
                )
    return buf.getvalue()


COMPARE_EXAMPLES = (
    "unlearn compare sample_configs/quick.yaml",
    "unlearn compare sample_configs/quick.yaml --wide --markdown quick.md",
    "unlearn compare benchmarks/mnist138.yaml --forget class:8",
    "unlearn compare a.safetensors b.safetensors --judge judge.safetensors --target class:1",
)


@handle_errors
def compare(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="An experiment YAML, or checkpoints to tabulate with --judge.",
            metavar="EXPERIMENT | CHECKPOINT...",
        ),
    ],
    judge: Annotated[
        Path | None,
        typer.Option(
            help="Judge checkpoint (required with checkpoints; overrides an experiment's judge)."
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="With checkpoints: what fratio counts, e.g. class:1 or attr:Male."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            help=f"Generated samples per evaluation. \\[default: {defaults.SAMPLES}, or the "
            "experiment's]"
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where an experiment keeps its runs (and "
            "resumes from). \\[default: the experiment's]"
        ),
    ] = None,
    forget: Annotated[
        str | None,
        typer.Option(
            help="Forget this instead of the experiment's requests: class:DIGIT[,DIGIT] or "
            "attr:NAME. One experiment file then serves every target, sharing its originals."
        ),
    ] = None,
    device: OptionalDeviceOpt = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the table as Markdown.")
    ] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write every cell as CSV.")
    ] = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Show every column, not only those that decide.", metavar=""),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Compare unlearning methods in the layout of the paper's Table 1."""
    from unlearn_cli.errors import UsageError

    yaml_inputs = [p for p in inputs if p.suffix in (".yaml", ".yml")]
    if yaml_inputs and (len(inputs) > 1):
        raise UsageError("give one experiment YAML, or only checkpoints (with --judge)")
    from unlearn_cli.engine.checkpoint import atomic_write, check_not_input, check_writable

    for flag, path in (("--markdown", markdown_path), ("--csv", csv_path)):
        if path is not None:
            check_writable(path)
            check_not_input(path, (*inputs, judge), flag)
    if markdown_path is not None and csv_path is not None:
        check_not_input(csv_path, (markdown_path,), "--csv")
    from unlearn_cli.cli.progress import RichProgress
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.engine.device import resolve_device
    from unlearn_cli.workflows.compare import run_experiment, tabulate_checkpoints
    from unlearn_cli.workflows.experiment import forgetting, load_experiment
    from unlearn_cli.workflows.targets import parse_target

    if yaml_inputs:
        exp = load_experiment(yaml_inputs[0])
        if forget is not None:
            exp = forgetting(exp, parse_target(forget, "forget"))
        if out_dir is not None:
            exp.out_dir = out_dir
        if samples is not None:
            exp.evaluate["samples"] = samples
        if judge is not None:
            exp.judge = {"checkpoint": str(judge)}
        dev = resolve_device(device or exp.device)
        report = run_experiment(exp, dev, RichProgress())
    else:
        if forget is not None:
            raise UsageError("--forget replaces an experiment's requests; give an experiment YAML")
        if judge is None:
            raise UsageError(
                "tabulating checkpoints needs --judge JUDGE.safetensors (train one "
                "with `unlearn train --model judge`)"
            )
        dev = resolve_device(device or "auto")
        report = tabulate_checkpoints(
            inputs,
            load_checkpoint(judge, "judge"),
            parse_target(target) if target is not None else None,
            defaults.evaluation({} if samples is None else {"samples": samples}),
            dev,
            RichProgress(),
        )
    from unlearn_cli.workflows.judges import untrusted_judge

    if warning := untrusted_judge("of this comparison", report["judge"]):
        warn(warning)
    if markdown_path is not None:
        atomic_write(markdown_path, lambda tmp: Path(tmp).write_text(markdown(report)))
    if csv_path is not None:
        atomic_write(csv_path, lambda tmp: Path(tmp).write_text(csv_text(report)))
    if json_out:
        print_json(report)
    else:
        for table in tables_that_fit(report, wide, table_width()):
            print_table(table)
        print_table(Text(caption(report, wide)))
        if report.get("wall_seconds") is not None:
            note(
                f"{report['wall_seconds']} s in all on {report['device']}; "
                f"{report['computed']} runs computed, {report['reused']} reused from "
                f"{report['out_dir']}; sample grids (before, the method, RETRAIN) in "
                f"{Path(report['out_dir']) / 'grid-*.png'}"
            )
