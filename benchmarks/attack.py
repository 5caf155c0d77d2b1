"""Relearning and the floor of retraining, for every row of a comparison.

    python benchmarks/attack.py REPORT.json --judge JUDGE.safetensors --relearn-steps 50

REPORT.json is one `unlearn compare --json` report (one target). For each seed, each row's model
is evaluated (`workflows.evaluate`) against that seed's RETRAIN model with the relearning
attack (few-shot and benign fratio, or for sample requests the MIA AUC, of the model and of
RETRAIN under the same fine-tuning), and against the next seed's RETRAIN as the second
reference: the floor, how far two retrainings differ, beside the model's distance to the
first. Prints one Markdown row per method and seed; `--out FILE.json` keeps every number.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from unlearn_cli.api import evaluate, json_text, load_checkpoint, parse_target

FLOORED = ("fratio", "fid", "precision", "retain_elbo", "fid_reference")


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--judge", type=Path, required=True)
    parser.add_argument("--relearn-steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    device = torch.device(args.device)
    judge = load_checkpoint(args.judge, "judge")
    target = parse_target(report["target"]) if report.get("target") else None
    rows = {r["label"]: r for r in report["rows"]}
    retrains = [load_checkpoint(Path(p), "vae") for p in rows["RETRAIN"]["models"]]
    out = []
    print(
        "| method | seed | fratio | relearned few-shot | RETRAIN's | benign | RETRAIN's "
        "| within the floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, row in rows.items():
        if label == "BEFORE":
            continue
        for i, path in enumerate(row["models"]):
            second = retrains[(i + 1) % len(retrains)] if len(retrains) > 1 else None
            result = evaluate(
                load_checkpoint(Path(path), "vae"),
                judge,
                target=target,
                samples=args.samples,
                device=device,
                reference=retrains[i],
                score_reference=True,
                relearn_steps=args.relearn_steps,
                second_reference=second,
            )
            p = result["privacy"]
            metric = "fratio" if p.get("relearn_fratio_fewshot") is not None else "mia_auc"
            floor = result.get("floor") or {"within": []}
            within = [k for k in floor["within"] if k in FLOORED]
            out.append({"label": label, "seed_index": i, "result": result})
            cells = [p.get(metric)] + [
                p.get(f"relearn_{metric}_{attack}{suffix}")
                for attack in ("fewshot", "benign")
                for suffix in ("", "_reference")
            ]
            print(
                f"| {row['title']} | {report['seeds'][i]} | "
                + " | ".join(map(_cell, cells))
                + f" | {', '.join(within) or 'none'} |"
            )
    if args.out is not None:
        args.out.write_text(json_text(out))
    return out


if __name__ == "__main__":
    main()
