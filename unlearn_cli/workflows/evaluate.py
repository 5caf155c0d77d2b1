"""Evaluation of a generator: did it forget (privacy), what did it cost in quality (utility) and
in time (cost), as in the paper's Table 1; plus quality gates and sample grids.

`evaluate()` keeps nothing between calls, so `unlearn compare` can call it once per checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearn_cli.data.images import Samples
from unlearn_cli.data.requests import SELECTORS, Request, resolve, union
from unlearn_cli.data.spec import DatasetSpec, load_split
from unlearn_cli.engine.checkpoint import Checkpoint, atomic_write
from unlearn_cli.engine.progress import NullProgress, Progress
from unlearn_cli.errors import CheckpointError, DataError, UsageError
from unlearn_cli.metrics import (
    fid_of_features,
    fratio_of_logits,
    inception_score_of_logits,
    judge_outputs,
    mia_auc,
    negative_elbo,
    precision_recall,
)
from unlearn_cli.metrics.fidelity import DEFAULT_K
from unlearn_cli.metrics.privacy import class_mix_weights

MIN_JUDGE_ACCURACY = 0.95  # the paper only trusts a classifier above 95% (its Appendix A)
FORGET_ELBO_MAX = 10000  # the forget-set ELBO is a mean over at most this many samples
GRID_SEED = 0  # every grid decodes the same latent vectors, so grids compare image by image
GRID_SIDE = 8  # an 8x8 grid
GRID_PADDING = 2  # white pixels around each image
GRID_GAP = 16  # white pixels between the before and after grids of --compare-grid
TARGET_HINT = "use class:DIGIT[,DIGIT...] (MNIST), attr:NAME (CelebA) or samples, e.g. class:1"


@dataclass(frozen=True)
class Target:
    """What the model should have forgotten: digits, a CelebA attribute, or individual samples."""

    kind: str  # "class", "attr" or "samples"
    values: tuple = ()  # digits for "class", attribute names for "attr", nothing for "samples"

    def __str__(self) -> str:
        if self.kind == "samples":
            return "samples"
        return f"{self.kind}:{','.join(map(str, self.values))}"

    def request(self) -> Request:
        """The deletion request that selects the same samples."""
        return Request("target", "class" if self.kind == "class" else "attribute", self.values)


def parse_target(text: str) -> Target:
    """'class:1', 'class:1,3', 'attr:Male' or 'samples'."""
    kind, sep, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    items = [p.strip() for p in rest.split(",") if p.strip()]
    if kind == "samples" and not sep:
        return Target("samples")
    if kind == "class" and items and all(p.isdigit() for p in items):
        return Target("class", tuple(sorted({int(p) for p in items})))
    if kind in ("attr", "attribute") and items:
        return Target("attr", tuple(dict.fromkeys(items)))
    raise UsageError(f"--target {text!r}: {TARGET_HINT}")


def forgotten_requests(ckpt: Checkpoint) -> list[Request]:
    """What `ckpt` does not know: the exclusions it was trained without (a retrain reference),
    then every request forgotten since, from its lineage."""
    out = []
    for d in (*ckpt.dataset.exclude, *ckpt.forgotten_requests()):
        selector = next((k for k in SELECTORS if k in d), None)
        if selector is None or "id" not in d:
            raise CheckpointError(
                f"{ckpt.path}: a forget request in its metadata has no id or "
                f"selector ({d!r}); the file was edited or is corrupt"
            )
        values = d[selector] if isinstance(d[selector], list) else [d[selector]]
        out.append(Request.from_dict({**d, selector: values}))
    return out


def default_target(requests: list[Request]) -> Target | None:
    """The target the lineage implies: its classes, else its attributes, else its samples."""
    classes = sorted({c for r in requests if r.selector == "class" for c in r.values})
    if classes:
        return Target("class", tuple(classes))
    attrs = [a for r in requests if r.selector == "attribute" for a in r.values]
    if attrs:
        return Target("attr", tuple(dict.fromkeys(attrs)))
    if any(r.selector in ("indices", "files") for r in requests):
        return Target("samples")
    return None


def check_target(target: Target, spec: DatasetSpec) -> None:
    """A target must name what the model learned, and leave something to retain."""
    if target.kind == "class":
        if spec.name != "mnist":
            raise UsageError(
                f"--target {target}: classes are MNIST digits; on {spec.name} use "
                "attr:NAME, e.g. attr:Male"
            )
        known = spec.classes or tuple(range(10))
        unknown = [c for c in target.values if c not in known]
        if unknown:
            raise UsageError(
                f"--target {target}: the model never learned digit {unknown[0]} "
                f"(its digits: {','.join(map(str, known))})"
            )
        if set(target.values) >= set(known):
            raise UsageError(
                f"--target {target}: that is every digit the model learned, so no "
                "class would be left to retain"
            )
    if target.kind == "attr" and spec.name != "celeba":
        raise UsageError(
            f"--target {target}: {spec.name} has no attributes; use class:DIGIT, e.g. class:1"
        )


def judge_classes(spec: DatasetSpec) -> tuple:
    """The judge's classes in index order: the digits in use, or (CelebA) without/with the
    attribute."""
    if spec.name == "mnist":
        return spec.classes or tuple(range(10))
    return (0, 1)


def check_judge(judge: Checkpoint, vae: Checkpoint, target: Target | None) -> None:
    """A judge must classify what the model generates: the same dataset, the same digits, or
    (CelebA) the attribute being scored."""
    j, v = judge.dataset, vae.dataset
    name = judge.path or "the judge"
    if judge.kind != "judge":
        raise CheckpointError(
            f"--judge {name}: is a {judge.kind} checkpoint, not a judge; train "
            "one with `unlearn train --model judge`"
        )
    if j.name != v.name:
        raise UsageError(
            f"--judge {name} was trained on {j.name} but the model on {v.name}; "
            f"train a judge on {v.name} with `unlearn train --model judge`"
        )
    if v.name == "mnist" and judge_classes(j) != judge_classes(v):
        digits = ",".join(map(str, judge_classes(v)))
        raise UsageError(
            f"--judge {name} tells digits {','.join(map(str, judge_classes(j)))} apart but the "
            f"model learned digits {digits}; train a matching judge: unlearn train --model judge "
            f"--classes {digits}"
        )
    if target is not None and target.kind == "attr" and len(target.values) > 1:
        raise UsageError(
            f"--target {target}: a judge classifies one attribute; score one at a time, e.g. "
            f"--target attr:{target.values[0]} with a judge of {target.values[0]}"
        )
    if target is not None and target.kind == "attr" and j.attribute != target.values[0]:
        raise UsageError(
            f"--judge {name} classifies {j.attribute} but the target is {target}; train one: "
            f"unlearn train --model judge --dataset celeba --attribute {target.values[0]}"
        )


def check_reference(reference: Checkpoint, vae: Checkpoint) -> None:
    r, v = reference.dataset, vae.dataset
    name = reference.path or "the reference"
    if reference.kind != "vae":
        raise CheckpointError(
            f"--reference {name}: is a {reference.kind} checkpoint; it must be "
            "the VAE retrained without the forgotten samples"
        )
    if (r.name, r.classes) != (v.name, v.classes):
        raise UsageError(
            f"--reference {name} was trained on {r.describe()} but the model on "
            f"{v.describe()}; it must be retrained on the same data minus the "
            "forgotten samples (`unlearn train --exclude MANIFEST`)"
        )


def cost(ckpt: Checkpoint) -> dict:
    """Wall time of what made this model: its forget operations (all of them, summed), else
    its training."""
    forgets = ckpt.lineage  # every lineage entry is a forget operation
    if forgets:
        methods = dict.fromkeys(str(e.get("method", "unknown")) for e in forgets)
        devices = dict.fromkeys(str(e.get("device", "unknown")) for e in forgets)
        seconds = sum(float(e.get("wall_seconds", 0.0)) for e in forgets)
        return {
            "seconds": round(seconds, 3),
            "operation": "forget:" + "+".join(methods),
            "device": "+".join(devices),
        }
    return {
        "seconds": float(ckpt.train_seconds),
        "operation": "retrain" if ckpt.dataset.exclude else "train",
        "device": str(ckpt.training.get("device", "unknown")),
    }


class DataImages:
    """The images of a dataset, batch by batch; iterable as often as needed."""

    def __init__(self, data, batch_size: int, device: torch.device):
        self.data, self.batch_size, self.device = data, batch_size, device

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        from unlearn_cli.engine.train import make_loader

        for x, _, _ in make_loader(self.data, self.batch_size, self.device):
            yield x


class Generated:
    """`n` images decoded from latent vectors drawn with a CPU generator seeded with `seed`,
    batch by batch, so 10,000 CelebA samples never sit in memory at once."""

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
        for z in self.z.split(self.batch_size):
            with torch.no_grad():
                yield self.vae.decode(z.to(self.device))  # (B, z) -> (B, C, H, W)


def _subset(data, mask: torch.Tensor):
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
        ids = union([resolve(r, train, full) for r in sample_requests])
        members = _subset(train, torch.isin(train.ids, ids))
        nonmember_mask = retain_mask.clone()
        if full.name == "mnist":  # non-members of the members' digits, in the members' mix
            nonmember_mask = torch.isin(test.labels, members.labels.unique())
            missing = sorted(
                set(members.labels.unique().tolist()) - set(test.labels[nonmember_mask].tolist())
            )
            if missing:
                raise DataError(
                    f"no held-out test images of digit(s) {missing}, which forgotten samples "
                    f"belong to, in {full.describe()}; use more data (a larger --limit at "
                    "training)"
                )
            nonmember_weights = class_mix_weights(members.labels, test.labels[nonmember_mask])
        if not nonmember_mask.any():
            raise DataError(
                f"no held-out test images of the forgotten samples' classes in "
                f"{full.describe()}; use more data (a larger --limit at training)"
            )
    if tgt is not None and tgt.kind == "samples":
        forget = members
    elif tgt is not None:
        forget = _subset(train, _selected(tgt.request(), train, full))
        if len(forget) > FORGET_ELBO_MAX:  # a seeded random subset estimates the mean
            keep = torch.randperm(len(forget), generator=torch.Generator().manual_seed(seed))
            forget = forget.subset(keep[:FORGET_ELBO_MAX].sort().values)
        retain_mask = ~_selected(tgt.request(), test, full)
    if not retain_mask.any():
        raise DataError(f"no held-out images outside {tgt} in {full.describe()}")
    return EvalSets(train, test, retain_mask, forget, members, nonmember_mask, nonmember_weights)


def evaluate(
    vae: Checkpoint,
    judge: Checkpoint | None,
    *,
    target: str | None = None,
    samples: int = 10000,
    seed: int = 0,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    root: str | None = None,
    reference: Checkpoint | None = None,
    requests: list[Request] | None = None,
) -> dict:
    """Privacy, utility and cost of the generator in `vae`, as a JSON-ready dict.

    `requests` are the deletion requests to score against; by default, what the checkpoint
    itself says it forgot (an original model says nothing, so score it with the requests its
    unlearned children honoured).

    `target` ("class:1", "attr:Male", "samples") overrides what the lineage says was forgotten.
    The target's training samples are the forget set of `forget_elbo` (a seeded random
    FORGET_ELBO_MAX of them at most); held-out test images outside the target are the retain
    set of `retain_elbo` and FID's real images. fratio, IS and FID need a `judge`; the
    membership-inference AUC needs sample-level forgetting (forgotten training samples against
    test samples of the same digits, weighted so that each digit carries its share among the
    forgotten samples), and `reference` (the retrained VAE) is scored on the
    same two sets. With a judge, `reference` also gives `fid_reference`: the FID between this
    model's samples and the reference's, the direct measure of "looks like retraining".
    """
    progress = progress or NullProgress()
    device = torch.device(device)
    if samples < 2:
        raise UsageError(f"--samples must be at least 2 (FID needs two), got {samples}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if vae.kind != "vae":
        raise CheckpointError(f"{vae.path}: is a {vae.kind} checkpoint; evaluate scores a VAE")
    if requests is None:
        requests = forgotten_requests(vae)
    tgt = parse_target(target) if target is not None else default_target(requests)
    sample_requests = [r for r in requests if r.selector in ("indices", "files")]
    if tgt is not None and tgt.kind == "samples" and not sample_requests:
        raise UsageError(
            "--target samples: the model's lineage names no forgotten samples "
            "(indices or files); name them with --manifest, or score classes with "
            "class:DIGIT or attr:NAME"
        )
    if tgt is not None:
        check_target(tgt, vae.dataset)
    if judge is not None:
        check_judge(judge, vae, tgt)
    if reference is not None:
        check_reference(reference, vae)

    progress.start("evaluate", total=3)
    sets = eval_sets(vae.dataset, tgt, sample_requests, root, seed)
    progress.advance(1, "data")
    privacy, elbos = _elbo_metrics(vae, reference, sets, tgt, seed, batch_size, device, progress)
    progress.advance(1, "elbo")
    utility = dict.fromkeys(("fratio", "is", "fid", "precision", "recall", "fid_reference"))
    if judge is not None:
        utility = _judge_metrics(
            vae, judge, reference, sets, tgt, samples, seed, batch_size, device
        )
    progress.advance(1, "judge")
    progress.done()
    return {
        "model": str(vae.path),
        "dataset": vae.dataset.describe(),
        "target": str(tgt) if tgt is not None else None,
        "samples": samples,
        "seed": seed,
        "privacy": {"fratio": utility["fratio"], **privacy},
        "utility": {
            **{k: utility[k] for k in ("is", "fid", "precision", "recall", "fid_reference")},
            **elbos,
        },
        "cost": cost(vae),
        "judge": None
        if judge is None
        else {"path": str(judge.path), "test_accuracy": judge.metrics.get("test_accuracy")},
    }


def _elbo_metrics(
    vae: Checkpoint,
    reference: Checkpoint | None,
    sets: EvalSets,
    tgt: Target | None,
    seed: int,
    batch_size: int,
    device: torch.device,
    progress: Progress,
) -> tuple[dict, dict]:
    """({mia_auc, mia_auc_reference}, {retain_elbo, forget_elbo}) from negative ELBOs."""

    def nelbo(model: torch.nn.Module, data) -> torch.Tensor:
        return negative_elbo(
            model.to(device), DataImages(data, batch_size, device), batch_size, seed
        )

    on_test = nelbo(vae.model, sets.test)  # serves the retain ELBO and the MIA non-members
    on_members = nelbo(vae.model, sets.members) if sets.members is not None else None
    forget_elbo = None
    if sets.forget is not None and len(sets.forget):
        if on_members is not None and sets.forget is sets.members:
            on_forget = on_members
        else:
            on_forget = nelbo(vae.model, sets.forget)
        forget_elbo = on_forget.mean().item()
    auc = auc_reference = None
    if on_members is not None:  # higher score = more likely a member: score = -negative ELBO
        auc = mia_auc(-on_members, -on_test[sets.nonmember_mask], sets.nonmember_weights)
    if reference is not None and sets.members is not None:
        _warn_if_not_retrained(reference, sets, progress)
        ref_test, ref_members = (
            nelbo(reference.model, sets.test),
            nelbo(reference.model, sets.members),
        )
        auc_reference = mia_auc(
            -ref_members, -ref_test[sets.nonmember_mask], sets.nonmember_weights
        )
    privacy = {"mia_auc": auc, "mia_auc_reference": auc_reference}
    elbos = {"retain_elbo": on_test[sets.retain_mask].mean().item(), "forget_elbo": forget_elbo}
    return privacy, elbos


def _judge_metrics(
    vae: Checkpoint,
    judge: Checkpoint,
    reference: Checkpoint | None,
    sets: EvalSets,
    tgt: Target | None,
    samples: int,
    seed: int,
    batch_size: int,
    device: torch.device,
) -> dict:
    """fratio and IS of `samples` generated images; FID, precision and recall against the
    held-out retain images; FID against the same number of the reference's samples."""
    model = judge.model.to(device).eval()

    def generated(vae_model: torch.nn.Module):
        fakes = Generated(vae_model.to(device).eval(), samples, seed, batch_size, device)
        return judge_outputs(model, fakes, batch_size)  # one pass over the samples

    logits, features = generated(vae.model)
    fr = None
    if tgt is not None and tgt.kind in ("class", "attr"):
        classes = judge_classes(judge.dataset)
        indices = [classes.index(c) for c in tgt.values] if tgt.kind == "class" else [1]
        fr = fratio_of_logits(logits, indices)
    real = DataImages(_subset(sets.test, sets.retain_mask), batch_size, device)
    _, real_features = judge_outputs(model, real, batch_size)
    precision = recall = None
    if min(len(features), len(real_features)) > DEFAULT_K:  # a k-NN ball needs k neighbours
        precision, recall = precision_recall(features, real_features)
    fid_reference = None
    if reference is not None:
        fid_reference = fid_of_features(features, generated(reference.model)[1])
    return {
        "fratio": fr,
        "is": inception_score_of_logits(logits),
        "fid": fid_of_features(features, real_features),
        "precision": precision,
        "recall": recall,
        "fid_reference": fid_reference,
    }


def _warn_if_not_retrained(reference: Checkpoint, sets: EvalSets, progress: Progress) -> None:
    full = dataclasses.replace(reference.dataset, exclude=())
    excluded = [r for r in forgotten_requests(reference) if r.selector in ("indices", "files")]
    ids = union([resolve(r, sets.train, full) for r in excluded])
    assert sets.members is not None  # called only when there are members to compare
    if not torch.isin(sets.members.ids, ids).all():
        progress.log(
            f"warning: --reference {reference.path} was trained on some of the "
            "forgotten samples, so it is not their retrain-from-scratch reference"
        )


def untrusted_judge(path, accuracy: float | None) -> str | None:
    """A warning when a judge's held-out accuracy is unknown or below MIN_JUDGE_ACCURACY."""
    if accuracy is None:
        return (
            f"judge {path} has no recorded held-out accuracy; fratio, IS and FID cannot be trusted"
        )
    if accuracy < MIN_JUDGE_ACCURACY:
        return (
            f"judge {path} is only {accuracy:.1%} accurate on held-out data (below "
            f"{MIN_JUDGE_ACCURACY:.0%}): fratio, IS and FID cannot be trusted; train it "
            "longer or on more data (`unlearn train --model judge --epochs N`)"
        )
    return None


GATES = {  # flag: (result group, key, label, True for a lower bound, what the metric needs)
    "--max-fratio": ("privacy", "fratio", "fratio", False, "--judge and a class/attr target"),
    "--max-mia-auc": ("privacy", "mia_auc", "MIA AUC", False, "forgotten individual samples"),
    "--min-is": ("utility", "is", "IS", True, "--judge"),
    "--max-fid": ("utility", "fid", "FID", False, "--judge"),
    "--min-precision": ("utility", "precision", "precision", True, "--judge"),
}


def gates(
    result: dict,
    max_fratio: float | None = None,
    max_fid: float | None = None,
    max_mia_auc: float | None = None,
    min_is: float | None = None,
    min_precision: float | None = None,
) -> list[str]:
    """One message per failed quality gate. A gate whose metric was not measured fails too, so
    that a CI job cannot pass by accident."""
    limits = {
        "--max-fratio": max_fratio,
        "--max-mia-auc": max_mia_auc,
        "--min-is": min_is,
        "--max-fid": max_fid,
        "--min-precision": min_precision,
    }
    failed = []
    for flag, limit in limits.items():
        if limit is None:
            continue
        group, key, label, is_min, needs = GATES[flag]
        value = result[group][key]
        if value is None:
            failed.append(f"{flag} {limit:g}: {label} was not measured (it needs {needs})")
        elif value < limit if is_min else value > limit:
            failed.append(f"{flag} {limit:g}: {label} is {value:.4g}")
    return failed


def check_grid_pair(vae: Checkpoint, before: Checkpoint) -> None:
    """Grids compare image by image only between models of one latent space and image shape."""
    if (before.model.latent_dim, before.model.shape) != (vae.model.latent_dim, vae.model.shape):
        raise UsageError(
            f"--compare-grid {before.path}: its latent size or image shape differs from the "
            "model's, so their grids cannot match image by image; compare a model with the one "
            "it was made from"
        )


@torch.no_grad()
def sample_grid(vae: Checkpoint, device: torch.device | str = "cpu") -> torch.Tensor:
    """An 8x8 grid of images decoded from the GRID_SEED latent vectors, (C, H, W) in [0, 1]."""
    from torchvision.utils import make_grid

    model = vae.model.to(device).eval()
    generator = torch.Generator().manual_seed(GRID_SEED)
    # torch types a Module's attributes as Tensor | Module, hence the ignores
    z = torch.randn(GRID_SIDE * GRID_SIDE, model.latent_dim, generator=generator)  # type: ignore[call-overload]  # (64, z)
    images = model.decode(z.to(device)).cpu()  # type: ignore[operator]  # (64, C, H, W)
    grid = make_grid(images, nrow=GRID_SIDE, padding=GRID_PADDING, pad_value=1.0)  # (3, H', W')
    return grid[: images.shape[1]]  # make_grid repeats a grey channel three times


def write_grid(
    path: str | Path,
    vae: Checkpoint,
    before: Checkpoint | None = None,
    device: torch.device | str = "cpu",
) -> Path:
    """Write the sample grid of `vae` as a PNG; with `before`, that model's grid on the left."""
    from PIL import Image

    grid = sample_grid(vae, device)
    if before is not None:
        check_grid_pair(vae, before)
        left = sample_grid(before, device)
        gap = torch.ones(grid.shape[0], grid.shape[1], GRID_GAP)  # (C, H, gap) white
        grid = torch.cat([left, gap, grid], dim=2)  # before | gap | after
    pixels = (grid * 255).round().clamp(0, 255).byte().permute(1, 2, 0)  # (H, W, C)
    array = pixels.squeeze(-1).numpy() if pixels.shape[-1] == 1 else pixels.numpy()
    image = Image.fromarray(array)
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return path
