"""The images an evaluation reads: real ones from the model's own splits (forget, retain,
members and non-members) and generated ones, batch by batch.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch

from unlearn_cli import distributed
from unlearn_cli.data.images import Samples
from unlearn_cli.data.requests import Request, resolve, union
from unlearn_cli.data.spec import DatasetSpec, load_split
from unlearn_cli.errors import DataError
from unlearn_cli.metrics import negative_elbo
from unlearn_cli.metrics.privacy import class_mix_weights
from unlearn_cli.workflows.targets import Target

FORGET_ELBO_MAX = 10000  # the forget-set ELBO is a mean over at most this many samples


class DataImages:
    """The images of a dataset, batch by batch; iterable as often as needed. Under torchrun,
    this rank's block of batches (`distributed.shard_rows`)."""

    def __init__(self, data, batch_size: int, device: torch.device):
        self.data, self.batch_size, self.device = data, batch_size, device

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        from unlearn_cli.engine.train import make_loader

        lo, hi = distributed.shard_rows(len(self.data), self.batch_size)
        data = (
            self.data if (lo, hi) == (0, len(self.data)) else self.data.subset(torch.arange(lo, hi))
        )
        for x, _, _ in make_loader(data, self.batch_size, self.device):
            yield x


class Generated:
    """`n` images decoded from latent vectors drawn with a CPU generator seeded with `seed`,
    batch by batch, so 10,000 CelebA samples never sit in memory at once. Every rank draws all
    n latents; under torchrun each decodes its block of batches (`distributed.shard_rows`)."""

    def __init__(
        self, vae: torch.nn.Module, n: int, seed: int, batch_size: int, device: torch.device
    ):
        generator = torch.Generator().manual_seed(seed)
        # torch types a Module's attributes as Tensor | Module, hence the ignore
        self.z = torch.randn(n, vae.latent_dim, generator=generator)  # type: ignore[call-overload]  # (N, z) on CPU
        self.vae, self.batch_size, self.device = vae, batch_size, device

    def __len__(self) -> int:
        return len(self.z)

    def __iter__(self):
        lo, hi = distributed.shard_rows(len(self.z), self.batch_size)
        for z in self.z[lo:hi].split(self.batch_size):
            with torch.no_grad():
                yield self.vae.decode(z.to(self.device))  # (B, z) -> (B, C, H, W)


def subset(data, mask: torch.Tensor):
    return data.subset(torch.nonzero(mask, as_tuple=True)[0])


def _selected(request: Request, data, spec: DatasetSpec) -> torch.Tensor:
    """Mask over `data` of the samples `request` selects."""
    return torch.isin(data.ids, resolve(request, data, spec))


@dataclass
class EvalSets:
    """The real images an evaluation needs, all from the model's own splits."""

    train: Samples  # the whole training split, forgotten samples included
    test: Samples  # the whole test split
    retain_mask: torch.Tensor  # (N_test,) held-out images outside the target: FID's real set
    forget: Samples | None  # training samples of the target (forget ELBO)
    members: Samples | None  # forgotten individual samples (MIA members)
    nonmember_mask: torch.Tensor | None  # (N_test,) test images of the members' classes
    # (N_nonmembers,) weights that give each class of non-members the members' share, or None
    # (CelebA: its labels are attribute vectors, with no class mix to match)
    nonmember_weights: torch.Tensor | None = None


def eval_sets(
    spec: DatasetSpec,
    tgt: Target | None,
    sample_requests: list[Request],
    root: str | None,
    seed: int,
) -> EvalSets:
    """Load the splits of `spec` (from `root` if given) and pick out the evaluation's sets."""
    full = dataclasses.replace(spec, exclude=())  # the whole split, exclusions included
    train = load_split(full, root=root)
    test = load_split(full, split="test", root=root)
    members = nonmember_mask = forget = nonmember_weights = None
    retain_mask = torch.ones(len(test), dtype=torch.bool)
    if sample_requests:
        ids = union([resolve(r, train, full, missing_ok=True) for r in sample_requests])
        members = subset(train, torch.isin(train.ids, ids))
        nonmember_mask = retain_mask.clone()
        if full.name == "mnist":  # non-members of the members' digits, in the members' mix
            nonmember_mask = torch.isin(test.labels, members.labels.unique())
            missing = sorted(
                set(members.labels.unique().tolist()) - set(test.labels[nonmember_mask].tolist())
            )
            if missing:
                raise DataError(
                    f"no held-out test images of digit(s) {missing}, which forgotten samples "
                    f"belong to, in {full.describe()}; use more data (a larger `limit` when "
                    "training)"
                )
            nonmember_weights = class_mix_weights(members.labels, test.labels[nonmember_mask])
        if not nonmember_mask.any():
            raise DataError(
                f"no held-out test images of the forgotten samples' classes in "
                f"{full.describe()}; use more data (a larger `limit` when training)"
            )
    if tgt is not None and tgt.kind == "samples":
        forget = members
    elif tgt is not None:
        forget = subset(train, _selected(tgt.request(), train, full))
        if len(forget) > FORGET_ELBO_MAX:  # a seeded random subset estimates the mean
            keep = torch.randperm(len(forget), generator=torch.Generator().manual_seed(seed))
            forget = forget.subset(keep[:FORGET_ELBO_MAX].sort().values)
        retain_mask = ~_selected(tgt.request(), test, full)
    if not retain_mask.any():
        raise DataError(f"no held-out images outside {tgt} in {full.describe()}")
    return EvalSets(train, test, retain_mask, forget, members, nonmember_mask, nonmember_weights)


def probe_losses(model: torch.nn.Module, probe, device: torch.device) -> torch.Tensor:
    """(N,) negative ELBO of each `probe` image (fixed noise, seed 0), so that scores of the
    same images under two models compare. `model` stays where it is."""
    if next(model.parameters()).device != device:
        model = copy.deepcopy(model).to(device)
    return negative_elbo(model, DataImages(probe, 256, device), 256, seed=0)
