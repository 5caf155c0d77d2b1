"""`unlearn evaluate`: did the generator forget, what did it cost, and can CI gate on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unlearn_cli import defaults
from unlearn_cli.cli.output import (
    DATA_DIR_OPTION,
    DEVICE_OPTION,
    JSON_OPTION,
    err,
    flag_of,
    handle_errors,
    in_panel,
    print_json,
    print_table,
    shown,
    visible,
    warn,
)

SCORE, SAMPLING, GATES, OUTPUT, DATA = (
    "What to score",
    "Sampling",
    "Gates",
    "Output",
    "Data and device",
)


def _option(help: str, panel: str, *names: str, **more) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help, show_default=False, rich_help_panel=panel, **more)


ModelArg = Annotated[
    Path, typer.Argument(help="The generator (VAE checkpoint) to score.", metavar="MODEL")
]
JudgeOpt = Annotated[
    Path | None,
    _option(
        "Judge classifier (`unlearn train --model judge`); fratio, IS and FID need one.",
        SCORE,
        metavar="FILE",
    ),
]
TargetOpt = Annotated[
    str | None,
    _option(
        "What should be forgotten: class:DIGIT[,DIGIT], attr:NAME or samples. Default: what "
        "the model's lineage says it forgot.",
        SCORE,
        metavar="TARGET",
    ),
]
ReferenceOpt = Annotated[
    list[Path] | None,
    _option(
        "The VAE retrained without the forgotten samples (`unlearn train --exclude`): scored "
        "beside the model on the same samples and sets, with the FID between its samples and "
        "the model's (with --judge). Twice (two retraining seeds): adds the floor, how far the "
        "two differ, beside the model's distance to the first.",
        SCORE,
        metavar="FILE",
    ),
]
RelearnOpt = Annotated[
    int,
    _option(
        "Relearning attack: fine-tune copies of the model (and of --reference) this many steps "
        "on 64 forgotten images, and on retained ones, then score the forgotten class's fratio "
        "(samples: their -ELBO and MIA AUC) again. 0: no attack.",
        SCORE,
        metavar="N",
    ),
]
MaxRelearnGapOpt = Annotated[
    float | None,
    _option(
        "Gate: exit 3 when the fratio after the few-shot relearning attack (samples: the MIA "
        "AUC) is above the reference's by more than this. Needs --relearn-steps, --reference.",
        GATES,
        metavar="X",
    ),
]
ManifestOpt = Annotated[
    Path | None,
    _option(
        "Deletion requests to score against instead of the model's lineage: how an original "
        "model is scored for the samples a manifest will forget (MIA AUC, forget ELBO).",
        SCORE,
        metavar="FILE",
    ),
]
SamplesOpt = Annotated[
    int,
    typer.Option(
        help="Images to generate for fratio, IS and FID (the paper's 10,000).",
        metavar="N",
        rich_help_panel=SAMPLING,
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        help="Seeds the samples and the ELBO noise: same seed, same numbers.",
        metavar="N",
        rich_help_panel=SAMPLING,
    ),
]
BatchOpt = Annotated[
    int, typer.Option(help="Images per batch.", metavar="N", rich_help_panel=SAMPLING)
]
GridOpt = Annotated[
    Path | None,
    _option(
        "Write an 8x8 PNG grid of samples decoded from fixed latent vectors, so grids of "
        "different models compare image by image.",
        OUTPUT,
        metavar="FILE",
    ),
]
CompareGridOpt = Annotated[
    Path | None,
    _option(
        "The model before forgetting: its grid goes left of this model's, in --grid (and the "
        "--reference's, if given, right of it).",
        OUTPUT,
        metavar="FILE",
    ),
]
ShadowOpt = Annotated[
    list[Path] | None,
    _option(
        "A shadow VAE: trained like the model on data that holds neither the forgotten samples "
        "nor the test split. Repeatable; with it the report adds the calibrated "
        'membership-inference attack (docs/benchmarks.md, "Memorisation").',
        SCORE,
        metavar="FILE",
    ),
]
MaxFratioOpt = Annotated[
    float | None, _option("Gate: exit 3 when fratio is above this.", GATES, metavar="X")
]
MaxFidOpt = Annotated[
    float | None, _option("Gate: exit 3 when FID is above this.", GATES, metavar="X")
]
MaxMiaOpt = Annotated[
    float | None, _option("Gate: exit 3 when the MIA AUC is above this.", GATES, metavar="X")
]
MinIsOpt = Annotated[
    float | None, _option("Gate: exit 3 when IS is below this.", GATES, metavar="X")
]
MinPrecisionOpt = Annotated[
    float | None,
    _option(
        "Gate: exit 3 when precision (share of samples that look like real data) is below.",
        GATES,
        metavar="X",
    ),
]
MinPixelPrecisionOpt = Annotated[
    float | None,
    _option(
        "Gate: exit 3 when pixel precision (needs no judge) is below this.", GATES, metavar="X"
    ),
]
LikeReferenceOpt = Annotated[
    bool,
    _option(
        "Gate: exit 3 unless the model forgot like --reference: fratio at most its + 0.02, "
        "precision at least 0.9 x its, FID at most 1.2 x its, retain -ELBO at most 1.1 x its, "
        "time at most 10% of its training time. Needs --judge and --reference.",
        GATES,
        "--like-reference",
        metavar="",
    ),
]


def _judge_hint(spec) -> str:
    """The command that trains a judge for models of this dataset."""
    from unlearn_cli.workflows.judges import data_args

    if spec.name == "mnist":
        classes = f" --classes {','.join(map(str, spec.classes))}" if spec.classes else ""
        return f"unlearn train --model judge{classes}"
    if spec.name == "folder":
        return f"unlearn train --model judge{data_args(spec)}"
    return "unlearn train --model judge --dataset celeba --attribute NAME --data-dir YOUR_COPY"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _rows(result: dict) -> list[tuple[str, str, float | None, float | None, str]]:
    """(group, metric, value, the reference's value, note) rows, grouped like the paper's
    Table 1."""
    privacy, utility, cost = result["privacy"], result["utility"], result["cost"]
    ref = result.get("reference") or {}
    needs_judge = "needs --judge" if result["judge"] is None else ""
    fratio_note = needs_judge or "needs a class or attribute target"
    if result["target"] == "samples":
        fratio_note = "individual samples: no classifier can tell; see the MIA AUC"
    if privacy["fratio"] is not None:
        lo, hi = privacy["fratio_interval"]
        fratio_note = (
            f"share of {result['samples']} samples judged {result['target']}; 95% "
            f"[{lo:.4g}, {hi:.4g}]"
        )
    mia_note = "no individual samples were forgotten"
    if privacy["mia_auc"] is not None:
        mia_note = "forgotten training samples vs held-out ones"
    fid_ref_note = needs_judge or "needs --reference"
    if utility["fid_reference"] is not None:
        fid_ref_note = "vs the retrained reference's samples; 0 is retraining"
    forget_note = "no target"
    if utility["forget_elbo"] is not None:
        forget_note = "forgotten training samples; rises toward the retrained model's"

    def mia(key: str) -> tuple:  # the attack on the model, and the same on the reference
        return privacy[key], privacy[f"{key}_reference"]

    def scored(key: str, group: dict = utility) -> tuple:  # the model's, and the reference's
        return group[key], ref.get(key)

    calibrated_note = "needs --shadow" if privacy["mia_auc"] is not None else mia_note
    relearn = []
    if privacy.get("relearn_steps"):
        steps = privacy["relearn_steps"]
        for attack, what in (("fewshot", "64 forgotten images"), ("benign", "retained images")):
            for metric, label in (
                ("fratio", "fratio"),
                ("mia_auc", "MIA AUC"),
                ("forget_elbo", "-ELBO forget"),
            ):
                key = f"relearn_{metric}_{attack}"
                if privacy.get(key) is not None:
                    relearn.append(
                        ("", f"{label}, relearned {attack}", *mia(key), f"{steps} steps on {what}")
                    )
    return [
        ("PRIVACY", "fratio (lower is better)", *scored("fratio", privacy), fratio_note),
        ("", "MIA AUC (0.5 is ideal)", *mia("mia_auc"), mia_note),
        ("", "MIA TPR at 1% FPR", *mia("mia_tpr_at_1fpr"), "0.01 is chance"),
        ("", "MIA TPR at 0.1% FPR", *mia("mia_tpr_at_01fpr"), "0.001 is chance"),
        ("", "calibrated MIA AUC", *mia("mia_calibrated_auc"), calibrated_note),
        ("", "calibrated TPR at 1% FPR", *mia("mia_calibrated_tpr_at_1fpr"), ""),
        *relearn,
        ("UTILITY", "IS (higher is better)", *scored("is"), needs_judge or "judge's classes"),
        ("", "FID (lower is better)", *scored("fid"), needs_judge or "vs held-out retain images"),
        ("", "precision", *scored("precision"), needs_judge or "samples that look like real data"),
        ("", "pixel precision", utility["pixel_precision"], None, "in pixels, needs no judge"),
        ("", "pixel recall", utility["pixel_recall"], None, "real data the samples cover, pixels"),
        ("", "recall", *scored("recall"), needs_judge or "real data the samples cover"),
        ("", "FID vs reference", utility["fid_reference"], None, fid_ref_note),
        ("", "-ELBO retain, nats", *scored("retain_elbo"), "held-out images outside the target"),
        ("", "-ELBO forget, nats", *scored("forget_elbo"), forget_note),
        ("COST", "time, s", *scored("seconds", cost), f"{cost['operation']} on {cost['device']}"),
        ("", "peak memory, MiB", *scored("peak_rss_mb", cost), "resident set (CPU)"),
        ("", "evaluation time, s", cost["eval_seconds"], None, "this evaluation's own"),
    ]


def _table(result: dict):
    from rich.table import Table

    table = Table(title=f"evaluate {shown(result['model'])}", title_justify="left")
    scored = result.get("reference") is not None
    columns = [("", "bold"), ("metric", None), ("value", None)]
    if scored:
        columns.append(("reference", None))
    for name, style in columns:  # numbers and names stay whole
        right = name in ("value", "reference")
        table.add_column(name, style=style, justify="right" if right else "left", no_wrap=True)
    table.add_column("", style="dim")  # the notes wrap when the terminal is narrow
    for group, metric, value, ref_value, note in _rows(result):
        if group and table.row_count:
            table.add_section()
        cells = (_fmt(value), _fmt(ref_value)) if scored else (_fmt(value),)
        table.add_row(group, metric, *cells, note)
    captions = []
    judge = result["judge"]
    if judge is not None:
        acc = judge["test_accuracy"]
        shown_acc = "unknown" if acc is None else f"{acc:.2%}"
        path = shown(judge["path"])
        captions.append(f"judge {path}: held-out accuracy {shown_acc}; seed {result['seed']}")
    if scored:
        captions.append(f"reference {shown(result['reference']['path'])}: {_verdict(result)}")
    if result.get("floor") is not None:
        captions.append(_floor_line(result["floor"]))
    if captions:
        table.caption = "\n".join(captions)
        table.caption_justify = "left"
    return table


def _verdict(result: dict) -> str:
    """The bar against the reference in one line: which checks fail, or that all pass."""
    from unlearn_cli.workflows.gates import reference_failures

    failed = reference_failures(result)
    if not failed:
        return "forgot like it (every check of --like-reference passes)"
    return "misses --like-reference: " + "; ".join(failed)


def _floor_line(floor: dict) -> str:
    """Which metrics the model is as close to the first reference on as the second is."""
    within = ", ".join(floor["within"]) or "none"
    beyond = [k for k, m in floor["metrics"].items() if m["within"] is False]
    return (
        f"floor (vs {shown(floor['second_reference'])}): as close as another retraining on "
        f"{within}; further on {', '.join(beyond) or 'none'}"
    )


EVALUATE_EXAMPLES = (
    "unlearn evaluate forgot.safetensors --judge judge.safetensors",
    "unlearn evaluate forgot.safetensors --judge judge.safetensors"
    " --reference retrained.safetensors --like-reference",
    "unlearn evaluate forgot.safetensors --grid grid.png --compare-grid original.safetensors",
    "unlearn evaluate forgot.safetensors --judge judge.safetensors --max-fratio 0.02 --json",
    "unlearn evaluate forgot.safetensors --judge judge.safetensors --reference r0.safetensors"
    " --reference r1.safetensors --relearn-steps 50 --max-relearn-gap 0.02",
)


@handle_errors
def evaluate(
    model: ModelArg,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
    reference: ReferenceOpt = None,
    shadow: ShadowOpt = None,
    manifest: ManifestOpt = None,
    samples: SamplesOpt = defaults.SAMPLES,
    seed: SeedOpt = defaults.EVAL_SEED,
    batch_size: BatchOpt = defaults.EVAL_BATCH_SIZE,
    device: Annotated[str, in_panel(DEVICE_OPTION, DATA)] = "auto",
    data_dir: Annotated[Path | None, in_panel(DATA_DIR_OPTION, DATA)] = None,
    grid: GridOpt = None,
    compare_grid: CompareGridOpt = None,
    max_fratio: MaxFratioOpt = None,
    max_fid: MaxFidOpt = None,
    max_mia_auc: MaxMiaOpt = None,
    min_is: MinIsOpt = None,
    min_precision: MinPrecisionOpt = None,
    min_pixel_precision: MinPixelPrecisionOpt = None,
    like_reference: LikeReferenceOpt = False,
    relearn_steps: RelearnOpt = 0,
    max_relearn_gap: MaxRelearnGapOpt = None,
    json_out: Annotated[bool, in_panel(JSON_OPTION, OUTPUT)] = False,
) -> None:
    """Score a generator: privacy, utility and cost, grouped as in the paper's Table 1.

    Gates (--max-fratio, --max-fid, --max-mia-auc, --min-is, --min-precision,
    --min-pixel-precision, --like-reference, --max-relearn-gap) exit 3 after the results
    print.

    A gate whose metric was not measured fails. Exit codes: 0 ok, 1 bug, 2 bad input, 3 gate.
    """
    from unlearn_cli.errors import EXIT_GATE, UsageError
    from unlearn_cli.workflows.gates import JUDGED, SPREAD_SEEDS, gates, reference_failures

    limits = {
        "max_fratio": max_fratio,
        "max_mia_auc": max_mia_auc,
        "min_is": min_is,
        "max_fid": max_fid,
        "min_precision": min_precision,
        "min_pixel_precision": min_pixel_precision,
        "max_relearn_gap": max_relearn_gap,
    }
    if compare_grid is not None and grid is None:
        raise UsageError("--compare-grid needs --grid FILE.png to write the side-by-side grid to")
    needs_judge = [g for g in JUDGED if limits[g] is not None]
    if needs_judge and judge is None:
        raise UsageError(
            f"{flag_of(needs_judge[0])} gates on a metric that needs --judge JUDGE.safetensors"
        )
    references = reference or []
    if len(references) > 2:
        raise UsageError("--reference: give one retrained model, or two (of two seeds)")
    if max_relearn_gap is not None and not (relearn_steps and references):
        raise UsageError(
            "--max-relearn-gap compares the relearned model with the relearned reference: "
            "give --relearn-steps N and --reference RETRAINED.safetensors"
        )
    if relearn_steps < 0:
        raise UsageError(f"--relearn-steps must be 0 or more, got {relearn_steps}")
    if like_reference and (judge is None or not references):
        raise UsageError(
            "--like-reference compares the model with a retrained one: give --judge "
            "JUDGE.safetensors and --reference RETRAINED.safetensors"
        )

    from unlearn_cli.cli.progress import RichProgress
    from unlearn_cli.data.requests import load_manifest
    from unlearn_cli.engine.checkpoint import check_not_input, check_writable, load_checkpoint
    from unlearn_cli.engine.device import resolve_device
    from unlearn_cli.workflows import evaluate as evaluation
    from unlearn_cli.workflows.grids import check_grid_pair, write_grid
    from unlearn_cli.workflows.judges import untrusted_judge
    from unlearn_cli.workflows.targets import parse_target

    evaluation.check_evaluation(samples, batch_size, seed)
    # the gates that read FID or precision judge them against their spread over sample seeds
    spread_gated = like_reference or max_fid is not None or min_precision is not None
    tgt = parse_target(target) if target is not None else None  # a typo fails before loading
    requests = load_manifest(manifest) if manifest is not None else None
    if grid is not None:
        check_writable(grid)
        inputs = (model, judge, *references, compare_grid, manifest, *(shadow or []))
        check_not_input(grid, inputs, "--grid")
    dev = resolve_device(device)
    vae = load_checkpoint(model, kind="vae", device=dev)
    judge_ckpt = load_checkpoint(judge, kind="judge", device=dev) if judge else None
    refs = [load_checkpoint(p, kind="vae", device=dev) for p in references]
    ref_ckpt = refs[0] if refs else None
    before = load_checkpoint(compare_grid, kind="vae", device=dev) if compare_grid else None
    shadows = [load_checkpoint(p, kind="vae", device=dev) for p in shadow or []]
    for other in (before, ref_ckpt if grid is not None else None):
        if other is not None:
            check_grid_pair(vae, other)
    result = evaluation.evaluate(
        vae,
        judge_ckpt,
        target=tgt,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
        device=dev,
        progress=RichProgress(),
        root=str(data_dir) if data_dir else None,
        reference=ref_ckpt,
        requests=requests,
        shadows=shadows,
        score_reference=ref_ckpt is not None,
        spread=SPREAD_SEEDS if spread_gated else 0,
        relearn_steps=relearn_steps,
        second_reference=refs[1] if len(refs) > 1 else None,
    )
    # after the checks inside evaluate(), so that a bad input stays a one-line error
    if judge_ckpt is None:
        err.print(
            f"note: fratio, IS and FID need --judge; train one with `{_judge_hint(vae.dataset)}`",
            markup=False,
            highlight=False,
        )
    elif warning := untrusted_judge(judge, judge_ckpt.metrics.get("test_accuracy")):
        warn(warning)
    if grid is not None:
        write_grid(grid, vae, before, dev, ref_ckpt)
        err.print(visible(f"wrote {grid}"), markup=False, highlight=False)
    if json_out:
        print_json(result)
    else:
        print_table(_table(result))
    failed = [f"{flag_of(gate)} {message}" for gate, message in gates(result, limits)]
    if like_reference:
        failed += [f"--like-reference: {message}" for message in reference_failures(result)]
    for message in failed:
        err.print(visible(f"gate failed: {message}"), markup=False, highlight=False)
    if failed:
        raise typer.Exit(EXIT_GATE)
