"""Where a model's FID comes from: the prior latents at which the original drew the forgotten
feature, and the rest.

    python benchmarks/fid_split.py REPORT.json --judge JUDGE.safetensors

REPORT.json is one `unlearn compare --json` report of a folder dataset with a class or an
attribute target, JUDGE the judge it was scored with. Every row's model of each seed draws
--samples images from the same prior latents (seeded); the judge says at which of them the
original (the BEFORE row) drew the forgotten feature. For each row and seed this prints the
FID against the held-out images outside the target over all samples, over those latents, and
over the rest: a method that keeps what the original drew elsewhere and redirects the
forgotten draws has its FID gap to retraining in the second column.
docs/benchmarks.md, "The attribute path on real images".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from unlearn_cli.api import eval_sets, fid_of_features, load_checkpoint, parse_target

BATCH = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--judge", required=True, help="the report's judge checkpoint")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = json.loads(Path(args.report).read_text())
    target = parse_target(report["target"])
    judge: Any = load_checkpoint(args.judge, "judge").model.eval()
    rows = {row["title"]: row["models"] for row in report["rows"]}
    originals = rows["BEFORE"]
    sets = eval_sets(load_checkpoint(originals[0], "vae").dataset, target, [], None, args.seed)
    name = str(target.values[0])
    attribute = target.kind == "attribute"
    test: Any = sets.test  # a folder's test split
    column = test.attribute_index(name) if attribute else test.class_index(name)
    real = test.images[sets.retain_mask].float() / 255  # FID's real set, as evaluate's
    with torch.no_grad():
        real_features = torch.cat([judge.features(b) for b in real.split(BATCH)])
    print("| model | seed | FID, all | FID, where the original drew it | FID, elsewhere | share |")
    print("| --- | --- | --- | --- | --- | --- |")
    for seed, original in enumerate(originals):
        latent = int(load_checkpoint(original, "vae").model.latent_dim)  # type: ignore[arg-type]
        z = torch.randn(args.samples, latent, generator=torch.Generator().manual_seed(args.seed))
        drawn = {}
        for title, models in rows.items():
            model: Any = load_checkpoint(models[seed], "vae").model.eval()
            with torch.no_grad():
                x = torch.cat([model.decode(b) for b in z.split(BATCH)])
                features = torch.cat([judge.features(b) for b in x.split(BATCH)])
                logits = torch.cat([judge(b) for b in x.split(BATCH)])
            drawn[title] = features, logits
        logits = drawn["BEFORE"][1]
        # the attribute judge's class 1 is "has it"; a class judge's argmax is the class
        there = logits.argmax(1) == (1 if attribute else column)
        for title, (features, _) in drawn.items():
            cells = [fid_of_features(features, real_features)]
            cells += [fid_of_features(features[m], real_features) for m in (there, ~there)]
            print(f"| {title} | {seed} | " + " | ".join(f"{c:.1f}" for c in cells)
                  + f" | {there.float().mean():.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
