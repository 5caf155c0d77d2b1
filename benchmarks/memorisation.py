"""Sample-level forgetting where there is something to forget: a VAE that memorises.

    python benchmarks/memorisation.py --out runs/memorisation   # 6 min on 2 cores + 8 retrainings

The MNIST VAE of the paper's recipe, trained long (--epochs) on a small training set (the first
--train-size images of ten-digit MNIST), remembers its training images: the
membership-inference attacks tell them from held-out test images. The script then

1. picks --forget random training samples (seeded) as one deletion request,
2. forgets them with `unlearn forget`'s default method (or --methods, each with its settings:
   `redirect:params=all,match_steps=400`), and retrains without them (the reference),
3. trains --shadows shadow VAEs the same way on disjoint training images that hold neither the
   forgotten samples nor the test split (the calibrated attack's models that never saw them),
4. retrains --references more models without the forgotten samples, each with its own seed
   (--seed + 1, + 2, ...; the retrained row keeps --seed): U-LiRA's references,
5. evaluates the original, the forgotten and the retrained model with the plain ELBO attack and
   the calibrated one (AUC and TPR at 1% FPR), U-LiRA's per-sample test against the references
   (the AUC of the forgotten samples' z-scores against never-seen test images', and the share
   of forgotten samples an attacker can still tell apart from never-seen ones:
   `unlearn_cli.metrics.ulira`), retain -ELBO, FID and precision (a judge trained on all of
   MNIST), with --relearn-steps N also the MIA AUC after the relearning attack (N steps on 64
   forgotten samples, and on retained ones), and prints one Markdown table; the JSON reports
   land in --out.

Each reference is one more retraining; U-LiRA needs --references 8 at least.

Results: docs/benchmarks.md, "Memorisation".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from unlearn_cli.api import (
    MIN_REFERENCES,
    DatasetSpec,
    JudgeConfig,
    TrainConfig,
    VAEConfig,
    all_settings,
    configure,
    evaluate,
    forget_key,
    get_method,
    load_checkpoint,
    load_split,
    parse_requests,
    plan_forget,
    resolve_device,
    run_forget,
    save_checkpoint,
    train_judge,
    train_vae,
    ulira_null,
    ulira_test,
)

COLUMNS = [
    ("privacy", "mia_auc", "MIA AUC"),
    ("privacy", "mia_tpr_at_1fpr", "TPR @1% FPR"),
    ("privacy", "mia_calibrated_auc", "calibrated AUC"),
    ("privacy", "mia_calibrated_tpr_at_1fpr", "calibrated TPR @1% FPR"),
    ("privacy", "ulira_auc", "U-LiRA AUC"),
    ("privacy", "ulira_told_apart", "told apart"),
    ("privacy", "relearn_mia_auc_fewshot", "relearned MIA AUC"),  # with --relearn-steps
    ("privacy", "relearn_mia_auc_benign", "benign relearned MIA AUC"),
    ("utility", "retain_elbo", "retain -ELBO"),
    ("utility", "fid", "FID"),
    ("utility", "precision", "precision"),
    ("cost", "seconds", "seconds"),
]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/memorisation"))
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--forget", type=int, default=50)
    p.add_argument("--shadows", type=int, default=4)
    p.add_argument(
        "--references",
        type=int,
        default=MIN_REFERENCES,
        help=f"models retrained without the forgotten samples, for U-LiRA (>= {MIN_REFERENCES})",
    )
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument(
        "--relearn-steps",
        type=int,
        default=0,
        help="also run the relearning attack (few-shot on 64 forgotten samples, and benign)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["redirect"],
        help="forget methods (default: the default), each with settings if any: "
        "redirect:params=all,match_steps=400",
    )
    p.add_argument("--judge", type=Path, help="a ten-digit judge to reuse (default: train one)")
    args = p.parse_args(argv)
    if args.references < MIN_REFERENCES:
        p.error(
            f"--references {args.references}: U-LiRA fits each sample's null from "
            f"{MIN_REFERENCES} retrained models at least (fewer give a standard deviation "
            "that is mostly noise)"
        )
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = DatasetSpec(name="mnist", limit=args.train_size)  # train and test: first N each
    model_cfg = VAEConfig.from_name("mnist")
    cfg = TrainConfig(epochs=args.epochs, batch_size=128, seed=args.seed)

    def saved(name: str, make):
        path = args.out / f"{name}.safetensors"
        if not path.exists():
            save_checkpoint(make(), path)
        return load_checkpoint(path)

    original = saved("original", lambda: train_vae(spec, model_cfg, cfg, device))
    pick = torch.randperm(args.train_size, generator=torch.Generator().manual_seed(args.seed))
    ids = load_split(spec).ids[pick[: args.forget]].sort().values.tolist()
    requests = parse_requests({"requests": [{"id": "memorised", "indices": ids}]}, "script")
    plan = plan_forget(original, requests)

    def forgotten(method: str, name: str | None = None, **settings):
        """The original after forgetting with `method`'s defaults (and `settings`), cached under
        the key `compare` gives such a run: a changed default or request is a new file, never a
        stale one."""
        algo = get_method(method)
        cfg = configure(algo, original, settings)
        k = forget_key(method, original.sha256, requests, cfg)
        name = name or ("retrain" if method == "retrain" else f"forget-{method}")
        return saved(f"{name}-{k}", lambda: run_forget(original, plan, algo, cfg, device))

    unlearned = {}
    for text in args.methods:
        method, settings = method_settings(text)
        unlearned[text] = forgotten(method, **settings)  # the key tells settings apart
    retrained = forgotten("retrain")
    references = [
        forgotten("retrain", f"reference-{k}", seed=args.seed + 1 + k)
        for k in range(args.references)
    ]
    full = load_split(DatasetSpec(name="mnist"))  # the whole training split, 60,000 images
    shadows = []
    for k in range(args.shadows):
        first = args.train_size * (k + 1)  # after the first N: no forgotten sample, no test image
        data = full.subset(torch.arange(first, first + args.train_size))
        shadow_cfg = dataclasses.replace(cfg, seed=args.seed + 1 + k)

        def shadow(c=shadow_cfg, d=data):
            return train_vae(spec, model_cfg, c, device, data=d)

        shadows.append(saved(f"shadow-{k}", shadow))
    judge = load_checkpoint(args.judge) if args.judge else None
    judge = judge or saved("judge", lambda: ten_digits(device))
    null = ulira_null(references, original, requests, device=device)  # once for every row
    rows = {}
    for name, ckpt in (("original", original), *unlearned.items(), ("retrain", retrained)):
        result = evaluate(
            ckpt,
            judge,
            samples=args.samples,
            device=device,
            reference=retrained,
            requests=requests,
            shadows=shadows,
            relearn_steps=args.relearn_steps,
        )
        result["privacy"].update(ulira_test(ckpt, null, device))
        file = name.replace(":", "-").replace(",", "-")
        (args.out / f"{file}.json").write_text(json.dumps(result, indent=2))
        rows[name] = result
    print(table(rows, judge.metrics.get("test_accuracy")))


def method_settings(text: str) -> tuple[str, dict]:
    """'redirect:params=all,match_steps=400' -> ('redirect', {'params': 'all', 'match_steps':
    400}), each value of its setting's type (`configure` names a setting no method has)."""
    types = all_settings()
    method, _, rest = text.partition(":")
    pairs = [item.partition("=") for item in rest.split(",") if item]
    return method, {k: types.get(k, str)(v) for k, _, v in pairs}


def ten_digits(device):
    """A judge of the ten digits (3 epochs on all 60,000 training images)."""
    cfg = JudgeConfig.from_name("mnist", num_classes=10)
    return train_judge(DatasetSpec(name="mnist"), cfg, TrainConfig(epochs=3, seed=0), device)


def table(rows: dict, judge_accuracy) -> str:
    columns = [c for c in COLUMNS if any(r[c[0]].get(c[1]) is not None for r in rows.values())]
    head = "| model | " + " | ".join(label for _, _, label in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for name, r in rows.items():
        cells = []
        for part, key, _ in columns:
            v = r[part].get(key)
            cells.append("-" if v is None else f"{v:.3f}" if key != "seconds" else f"{v:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\njudge held-out accuracy: {judge_accuracy}"


if __name__ == "__main__":
    main()
