"""Where a model's forgotten-class samples come from: the forget region or the retained one.

    python benchmarks/forget_region.py REPORT.json --judge JUDGE.safetensors --class 8

REPORT.json is one `unlearn compare --json` report (one target); its rows' models of the
report's first seed are read, or of `--report-seed S`. Each row's model draws `--samples` prior
samples; the original's (BEFORE's) encoder places every sample in its latent space, and the
sample lies in the *forget region* when most of its 10 nearest training latents belong to the
forgotten class. For each row this prints the share of samples in the forget region, and the
judge's fratio inside and outside it: a method that redirects the forget region but keeps the
retained region as the original drew it can get no lower than the original's fratio outside
the forget region. docs/benchmarks.md, "Push away".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from unlearn_cli.api import VAE, encode, judge_classes, load_checkpoint, training_set

NEIGHBOURS = 10
BANK = 20000  # training images encoded as the latent reference


def share(flags: torch.Tensor) -> str:
    return f"{flags.float().mean():.3f}" if len(flags) else "-"


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--judge", required=True)
    parser.add_argument("--class", dest="target", type=int, required=True)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0, help="of the prior draws")
    parser.add_argument(
        "--report-seed", type=int, help="the report's seed to read (default: its first)"
    )
    args = parser.parse_args(argv)

    report = json.loads(Path(args.report).read_text())
    at = 0  # the report's first seed
    if args.report_seed is not None:
        seeds = report.get("seeds", [])
        if args.report_seed not in seeds:
            parser.error(f"--report-seed {args.report_seed}: the report has seeds {seeds}")
        at = seeds.index(args.report_seed)
    models = {row["title"]: row["models"][at] for row in report["rows"] if row.get("models")}
    original = load_checkpoint(models["BEFORE"], kind="vae")
    vae = original.model
    assert isinstance(vae, VAE)
    judge = load_checkpoint(args.judge, kind="judge")
    index = judge_classes(judge.dataset).index(args.target)  # the judge's output for the class
    data = training_set(original.dataset)
    generator = torch.Generator().manual_seed(args.seed)
    rows = torch.randperm(len(data), generator=generator)[:BANK]
    bank = encode(vae, data.subset(rows), torch.device("cpu"))  # (BANK, z)
    forgotten = data.labels[rows] == args.target  # (BANK,)
    z = torch.randn(args.samples, vae.latent_dim, generator=generator)

    print("| model | forget region | fratio | inside | outside |")
    print("| --- | --- | --- | --- | --- |")
    for title, path in models.items():
        model = load_checkpoint(path, kind="vae").model
        assert isinstance(model, VAE)
        samples = model.decode(z)  # same z for every row
        distances = torch.cdist(vae.encode(samples)[0], bank)  # (samples, BANK)
        nearest = distances.topk(NEIGHBOURS, largest=False).indices  # (samples, NEIGHBOURS)
        inside = forgotten[nearest].float().mean(1) > 0.5
        judged = judge.model(samples).argmax(1) == index
        cells = [share(inside), share(judged), share(judged[inside]), share(judged[~inside])]
        print(f"| {title} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
