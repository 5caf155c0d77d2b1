"""A stream of deletion requests: 10 batches, each forgotten from the newest checkpoint.

    python benchmarks/stream.py --out runs/stream                    # about 8 min on 2 cores
    python benchmarks/stream.py --original ORIGINAL --judge JUDGE    # reuse trained models

The ten-digit MNIST VAE (the mnist10.yaml recipe: 20 epochs on all 60,000 images) receives
--batches batches of --per-batch random training samples each, and batch --class-at also asks
for every image of the digit --digit. Each batch is one `unlearn forget` with the default method
(or --method) on the previous batch's output. After every batch the script measures what was
forgotten so far (membership-inference AUC and TPR at 1% FPR of every forgotten sample, fratio
of the digit once asked for), retain quality (-ELBO of held-out images outside the digit, FID,
precision), the cumulative forget time and the lineage's retain drift, the number `unlearn
forget` warns on, and from the batch after the digit's request on, each forget's re-check of
it (`workflows.recheck`): how far the digit's images' -ELBO has come back towards its level
before it was forgotten, the share `unlearn forget` warns past, and the re-check's seconds.
At the end one model retrained without all of it is measured the same way.

Results: docs/benchmarks.md, "Streams of deletion requests".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from unlearn_cli.api import (
    DatasetSpec,
    JudgeConfig,
    Request,
    Target,
    TrainConfig,
    VAEConfig,
    configure,
    cumulative_drift,
    evaluate,
    forget_key,
    get_method,
    load_checkpoint,
    parse_requests,
    plan_forget,
    resolve_device,
    run_forget,
    save_checkpoint,
    train_judge,
    train_vae,
    training_set,
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/stream"))
    p.add_argument("--original", type=Path, help="a ten-digit VAE to start from")
    p.add_argument("--judge", type=Path, help="a ten-digit judge (default: train one)")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--per-batch", type=int, default=50)
    p.add_argument("--class-at", type=int, default=5, help="the batch that also asks for a digit")
    p.add_argument("--digit", type=int, default=7)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--method", default="redirect", help="forget method (default: the default)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = DatasetSpec(name="mnist")

    def saved(name: str, make):
        path = args.out / f"{name}.safetensors"
        if not path.exists():
            save_checkpoint(make(), path)
        return load_checkpoint(path)

    if args.original:
        original = load_checkpoint(args.original, "vae")
    else:
        cfg = TrainConfig(epochs=20, seed=args.seed)
        original = saved(
            "original", lambda: train_vae(spec, VAEConfig.from_name("mnist"), cfg, device)
        )
    if args.judge:
        judge = load_checkpoint(args.judge, "judge")
    else:
        jcfg = JudgeConfig.from_name("mnist", num_classes=10)
        judge = saved("judge", lambda: train_judge(spec, jcfg, TrainConfig(epochs=3), device))

    train = training_set(original.dataset)  # what the original was trained on
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))
    outside = order[train.labels[order] != args.digit]  # samples asked for one by one
    batches: list[list[Request]] = []
    for b in range(args.batches):
        ids = train.ids[outside[b * args.per_batch : (b + 1) * args.per_batch]].sort().values
        asked = [{"id": f"batch-{b + 1}", "indices": ids.tolist()}]
        if b + 1 == args.class_at:
            asked.append({"id": f"digit-{args.digit}", "class": [args.digit]})
        batches.append(parse_requests({"requests": asked}, f"batch {b + 1}"))

    method = get_method(args.method)  # by default, the default of `unlearn forget`
    current, rows, seconds = original, [], 0.0
    so_far: list[Request] = []
    for b, batch in enumerate(batches, start=1):
        plan = plan_forget(current, batch)
        assert current.sha256 is not None  # loaded from a file
        cfg = configure(method, current, {})
        # keyed as `compare` keys a run: a changed default or batch is a new file, never stale
        k = forget_key(method.name, current.sha256, batch, cfg)
        current = saved(
            f"after-batch-{b}-{k}",
            lambda c=current, p=plan, g=cfg: run_forget(c, p, method, g, device),
        )
        so_far += batch
        seconds += current.lineage[-1]["wall_seconds"]
        rows.append(measure(f"after batch {b}", current, judge, so_far, args, device))
        rows[-1].update(seconds=seconds, drift=cumulative_drift(current.lineage))
        rows[-1].update(rechecked(current.lineage[-1], f"digit-{args.digit}"))
        print(line(rows[-1]), flush=True)
    retrain = get_method("retrain")
    everything = plan_forget(original, so_far)
    assert original.sha256 is not None
    rcfg = configure(retrain, original, {})
    k = forget_key(retrain.name, original.sha256, so_far, rcfg)
    retrained = saved(
        f"retrain-{k}", lambda: run_forget(original, everything, retrain, rcfg, device)
    )
    rows.append(measure("retrained", retrained, judge, so_far, args, device))
    rows[-1].update(seconds=retrained.lineage[-1]["wall_seconds"], drift=None)
    rows[-1].update(comeback=None, recheck_seconds=None)
    print(line(rows[-1]))
    (args.out / "stream.json").write_text(json.dumps(rows, indent=2))
    print()
    print(table(rows))


def measure(name, ckpt, judge, requests, args, device) -> dict:
    """What was forgotten so far and what it cost: samples (MIA) and the digit (fratio, once
    asked for) apart; retain quality outside the digit."""
    samples = [r for r in requests if r.selector == "indices"]
    asked = any(r.selector == "class" for r in requests)
    target = Target("class", (args.digit,))
    kw = dict(samples=args.samples, seed=0, device=device)
    mia = evaluate(ckpt, None, target=Target("samples"), requests=samples, **kw)["privacy"]
    quality = evaluate(ckpt, judge, target=target, requests=requests, **kw)
    return {
        "model": name,
        "forgotten_samples": sum(len(r.values) for r in samples),
        "mia_auc": mia["mia_auc"],
        "mia_tpr_at_1fpr": mia["mia_tpr_at_1fpr"],
        "fratio": quality["privacy"]["fratio"] if asked else None,
        "retain_elbo": quality["utility"]["retain_elbo"],
        "fid": quality["utility"]["fid"],
        "precision": quality["utility"]["precision"],
    }


def rechecked(entry: dict, request_id: str) -> dict:
    """What a forget's re-check says of the request `request_id`: its comeback (None before it
    was asked for, or from a lineage entry written before the re-check), and the seconds."""
    rows = {r["id"]: r for r in entry.get("recheck") or []}
    comeback = rows[request_id]["comeback"] if request_id in rows else None
    return {"comeback": comeback, "recheck_seconds": entry.get("recheck_seconds")}


COLUMNS = [
    ("forgotten_samples", "samples forgotten", "{:d}"),
    ("mia_auc", "MIA AUC", "{:.3f}"),
    ("mia_tpr_at_1fpr", "TPR @1% FPR", "{:.3f}"),
    ("fratio", "fratio (digit)", "{:.3f}"),
    ("retain_elbo", "retain -ELBO", "{:.2f}"),
    ("fid", "FID", "{:.2f}"),
    ("precision", "precision", "{:.3f}"),
    ("seconds", "forget seconds, cumulative", "{:.1f}"),
    ("drift", "retain drift", "{:+.1%}"),
    ("comeback", "digit comeback", "{:.0%}"),
    ("recheck_seconds", "re-check seconds", "{:.2f}"),
]


def cells(row: dict) -> list[str]:
    return ["-" if row[k] is None else fmt.format(row[k]) for k, _, fmt in COLUMNS]


def line(row: dict) -> str:
    return row["model"] + ": " + ", ".join(f"{h} {c}" for (_, h, _), c in zip(COLUMNS, cells(row)))


def table(rows: list[dict]) -> str:
    head = "| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    body = [f"| {r['model']} | " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join([head, "|" + " --- |" * (len(COLUMNS) + 1), *body])


if __name__ == "__main__":
    main()
