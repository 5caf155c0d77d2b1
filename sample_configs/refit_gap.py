"""How central the forgotten data sits under the refitted prior, diagonal against full.

    python sample_configs/refit_gap.py ORIGINAL.safetensors --class 8

Step 1 of redirect refits the prior to the retained data's aggregate posterior, per dimension
(`covariance: diagonal`) or with the correlations between dimensions (`full`, the default).
Prior draws land where the squared norm of z_new is small. For each refit this prints the mean
squared norm of posterior draws of the retained and of the forgotten samples, in the refitted
coordinates, and the share of forgotten draws nearer the centre than the median retained draw:
a forgotten class at or below the retained level is drawn as often as retained data. The refit
is computed as redirect computes it (4,096 retained samples), after no step 0. README, "Full
refit".
"""

from __future__ import annotations

import argparse
import copy

import torch

from unlearn_cli.data.requests import Request
from unlearn_cli.engine.checkpoint import load_checkpoint
from unlearn_cli.methods.redirect import encode_all, refit_prior
from unlearn_cli.methods.surgery import sample_of
from unlearn_cli.workflows.forget import plan_forget

BANK = 4096  # redirect's bank_size
FORGOTTEN = 2000  # forgotten samples drawn from


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--class", dest="target", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    original = load_checkpoint(args.checkpoint, kind="vae")
    plan = plan_forget(original, [Request("gap", "class", (args.target,))])
    generator = torch.Generator().manual_seed(args.seed)
    cpu = torch.device("cpu")
    mu_r, logvar_r = encode_all(original.model, sample_of(plan.retain, BANK, generator), cpu)
    mu_f, logvar_f = encode_all(original.model, sample_of(plan.forget, FORGOTTEN, generator), cpu)
    draw_r = mu_r + torch.randn(mu_r.shape, generator=generator) * (0.5 * logvar_r).exp()
    draw_f = mu_f + torch.randn(mu_f.shape, generator=generator) * (0.5 * logvar_f).exp()

    print("| refit | retained mean squared norm | forgotten | forgotten draws nearer the centre |")
    print("| --- | --- | --- | --- |")
    for name, full in (("diagonal", False), ("full", True)):
        model = copy.deepcopy(original.model)
        m, a, _ = refit_prior(model, mu_r, logvar_r, full=full)
        norm_r = ((draw_r - m) @ a.T).pow(2).sum(1)  # (BANK,) squared norms, new coordinates
        norm_f = ((draw_f - m) @ a.T).pow(2).sum(1)
        nearer = (norm_f < norm_r.median()).float().mean()
        print(f"| {name} | {norm_r.mean():.1f} | {norm_f.mean():.1f} | {nearer:.2f} |")


if __name__ == "__main__":
    main()
