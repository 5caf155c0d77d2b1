"""Evaluation of a generator: did it forget (privacy), what did it cost in quality (utility) and
in time (cost), as in the paper's Table 1.

`evaluate()` keeps nothing between calls, so `unlearn compare` can call it once per checkpoint;
a caller scoring many models against one reference may hand it a `Memo` to judge the
reference's samples once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from unlearn_cli import defaults, distributed
from unlearn_cli.config import MAX_COUNT, check_seed
from unlearn_cli.data.requests import Request
from unlearn_cli.data.spec import folder_changes, judge_classes
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.engine.progress import NullProgress, Progress
from unlearn_cli.errors import CheckpointError, UsageError
from unlearn_cli.metrics import (
    fid_of_features,
    fratio_of_logits,
    inception_score_of_logits,
    judge_outputs,
    mia_auc,
    negative_elbo,
    precision_recall,
)
from unlearn_cli.metrics.fidelity import DEFAULT_K, pixel_features
from unlearn_cli.metrics.privacy import calibrated_scores, tpr_at_fpr, wilson_interval
from unlearn_cli.workflows.cost import Clock, cost
from unlearn_cli.workflows.gates import like_reference
from unlearn_cli.workflows.image_sets import DataImages, EvalSets, Generated, eval_sets, subset
from unlearn_cli.workflows.judges import check_judge
from unlearn_cli.workflows.reference import check_reference, warn_if_not_retrained
from unlearn_cli.workflows.targets import Target, absent_requests, check_target, default_target

JUDGED_KEYS = (  # what the judge's features give
    "fratio", "fratio_interval", "is", "fid", "precision", "recall", "fid_std", "precision_std"
)  # fmt: skip


def check_evaluation(samples: int, batch_size: int, seed: int = defaults.EVAL_SEED) -> None:
    """An evaluation needs two samples at least (FID's covariance), a batch of one, and a seed
    the generators take."""
    check_seed(seed)
    if not 2 <= samples <= MAX_COUNT:
        raise UsageError(f"must be from 2 (FID needs two) to {MAX_COUNT}, got {samples}", "samples")
    if not 1 <= batch_size <= MAX_COUNT:
        raise UsageError(f"must be from 1 to {MAX_COUNT}, got {batch_size}", "batch_size")


def evaluate(
    vae: Checkpoint,
    judge: Checkpoint | None,
    *,
    target: Target | None = None,
    samples: int = defaults.SAMPLES,
    seed: int = defaults.EVAL_SEED,
    batch_size: int = defaults.EVAL_BATCH_SIZE,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    root: str | None = None,
    reference: Checkpoint | None = None,
    requests: list[Request] | None = None,
    shadows: list[Checkpoint] | None = None,
    score_reference: bool = False,
    spread: int = 0,
    relearn_steps: int = 0,
    second_reference: Checkpoint | None = None,
    memo: Memo | None = None,
) -> dict:
    """Privacy, utility and cost of the generator in `vae`, as a JSON-ready dict.

    `requests` are the deletion requests to score against; by default, what the checkpoint
    itself says it forgot (an original model says nothing, so score it with the requests its
    unlearned children honoured).

    `target` (class:1, attribute:Male, samples) overrides what the lineage says was forgotten.
    The target's training samples are the forget set of `forget_elbo` (a seeded random
    FORGET_ELBO_MAX of them at most); held-out test images outside the target are the retain
    set of `retain_elbo` and FID's real images. fratio, IS and FID need a `judge`; the
    membership-inference AUC needs sample-level forgetting (forgotten training samples against
    test samples of the same digits, weighted so that each digit carries its share among the
    forgotten samples), and `reference` (the retrained VAE) is scored on the
    same two sets. With a judge, `reference` also gives `fid_reference`: the FID between this
    model's samples and the reference's, the direct measure of "looks like retraining".

    Besides the AUC, each attack reports its true-positive rate at 1% false positives. `shadows`
    (VAEs of the same kind trained on data that holds neither the forgotten samples nor the test
    split) add the calibrated attack, whose score is how much better the model explains a
    sample than the shadows do (`metrics.privacy.calibrated_scores`).

    With `score_reference`, the reference is scored too, on the same sets and samples (its
    fratio, IS, FID, precision, recall, retain -ELBO and cost under `reference`), and
    `like_reference` holds the bar of "forgetting like retraining" (`gates.LIKE_REFERENCE`),
    checked against it. `unlearn compare` leaves it off: its RETRAIN row is scored once.

    Sampling error: fratio comes with its 95% Wilson interval; with `spread` > 1, FID and
    precision with their standard deviation over that many sample seeds (for the model, and
    the scored reference), which `like_reference` uses to say whether a miss is beyond it.

    `relearn_steps` > 0 runs the relearning attack (`workflows.relearn`) on the model and the
    reference; `second_reference` (another retraining, of another seed) adds `floor`: how far
    two retrainings differ, beside how far the model is from the first (`workflows.floor`).

    `memo` keeps the judge's features of the reference's samples for the next call that
    names the same judge, reference and samples (`unlearn compare` scores every row of a seed
    against one retraining); the results are the same with it or without it.
    """
    progress = progress or NullProgress()
    device = torch.device(device)
    check_evaluation(samples, batch_size, seed)
    clock = Clock(device)
    if vae.kind != "vae":
        raise CheckpointError(f"{vae.path}: is a {vae.kind} checkpoint; evaluate scores a VAE")
    if requests is None:
        requests = absent_requests(vae)
    tgt = target if target is not None else default_target(requests)
    sample_requests = [r for r in requests if r.selector in ("indices", "files")]
    if tgt is not None and tgt.kind == "samples" and not sample_requests:
        raise UsageError(
            "samples: the model's lineage names no forgotten samples (indices or files); "
            "name them in a manifest, or score classes with class:DIGIT or attribute:NAME",
            "target",
        )
    if tgt is not None:
        check_target(tgt, vae.dataset)
    if judge is not None:
        check_judge(judge, vae, tgt)
    if reference is not None:
        check_reference(reference, vae)
    if second_reference is not None:
        if reference is None or not score_reference:
            raise UsageError("a second reference needs a first one, scored", "reference")
        check_reference(second_reference, vae)
    if relearn_steps and not 0 < relearn_steps <= MAX_COUNT:
        raise UsageError(f"must be from 1 to {MAX_COUNT}, got {relearn_steps}", "relearn_steps")
    for shadow in shadows or []:
        check_reference(shadow, vae, "shadow")

    progress.start("evaluate", total=3)
    sets = eval_sets(vae.dataset, tgt, sample_requests, root, seed)
    if changed := folder_changes(vae.dataset, sets.train):
        progress.log(f"note: {changed}; scoring against the folder as it is now")
    progress.advance(1, "data")
    scored = reference if score_reference else None
    privacy, elbos, ref_elbos = _elbo_metrics(
        vae, reference, sets, tgt, seed, batch_size, device, progress, shadows, scored
    )
    progress.advance(1, "elbo")
    # one pass over the samples and the real images serves the judge and the pixel metrics
    fakes = PixelTap(Generated(vae.model.to(device).eval(), samples, seed, batch_size, device))
    real = PixelTap(DataImages(subset(sets.test, sets.retain_mask), batch_size, device))
    utility = dict.fromkeys((*JUDGED_KEYS, "fid_reference"))
    ref_judged = dict.fromkeys(JUDGED_KEYS)
    if judge is not None:
        utility, ref_judged = _judge_metrics(
            fakes, real, judge, reference, tgt, samples, seed, batch_size, device, scored, spread,
            memo=memo,
        )  # fmt: skip
    pixel_precision, pixel_recall = _pixel_metrics(fakes, real)
    progress.advance(1, "judge")
    progress.done()
    result: dict[str, Any] = {
        "model": str(vae.path),
        "dataset": vae.dataset.describe(),
        "target": str(tgt) if tgt is not None else None,
        "samples": samples,
        "seed": seed,
        "privacy": {
            "fratio": utility["fratio"],
            "fratio_interval": utility["fratio_interval"],
            **privacy,
        },
        "utility": {
            **{k: utility[k] for k in ("is", "fid", "precision", "recall", "fid_reference")},
            "fid_std": utility["fid_std"],
            "precision_std": utility["precision_std"],
            "pixel_precision": pixel_precision,
            "pixel_recall": pixel_recall,
            **elbos,
        },
        "cost": cost(vae),
        "judge": None
        if judge is None
        else {"path": str(judge.path), "test_accuracy": judge.metrics.get("test_accuracy")},
    }
    if scored is not None:
        result["reference"] = {
            "path": str(scored.path),
            **ref_judged,
            **ref_elbos,
            **cost(scored),
        }
    if relearn_steps:
        from unlearn_cli.workflows.relearn import relearn_metrics

        result["privacy"].update(
            relearn_metrics(
                vae, reference, judge, tgt, sets, relearn_steps, samples, seed, batch_size, device
            )
        )
    if second_reference is not None:
        from unlearn_cli.workflows.floor import floor

        assert reference is not None  # checked above
        options = {"samples": samples, "seed": seed, "batch_size": batch_size, "root": root}
        result["floor"] = floor(
            result, requests, reference, second_reference, judge, tgt, options, device
        )
    if scored is not None:
        result["like_reference"] = like_reference(result)
    result["cost"].update(clock.stop())
    return result


class Memo:
    """Judge features computed once and handed to later evaluations, by what they depend on
    (file digests, sample count, seed, batch size, device); a key holding a None digest (a
    model never saved) is never kept."""

    def __init__(self) -> None:
        self.kept: dict[tuple, torch.Tensor] = {}

    def get(self, key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if None in key:
            return compute()
        if key not in self.kept:
            self.kept[key] = compute()
        return self.kept[key]


class PixelTap:
    """Batches of images passed through unchanged, keeping each batch's pixel features on the
    way; a second pass only when the first never happened (no judge)."""

    def __init__(self, images):
        self.images, self.pixels = images, []

    def __iter__(self):
        self.pixels = []
        for x in self.images:
            self.pixels.append(pixel_features(x.cpu()))  # (B, P)
            yield x

    def features(self) -> torch.Tensor:
        """(N, P) pixel features of every image, every rank's gathered under torchrun."""
        if not self.pixels:
            for _ in self:
                pass
        return torch.cat(distributed.gather_batches(self.pixels, torch.device("cpu")))


def _pixel_metrics(fakes: PixelTap, real: PixelTap) -> tuple[float | None, float | None]:
    """k-NN precision and recall of the samples against the held-out retain images in pixel
    space: no judge needed, and an artefact cannot hide among the judge's classes."""
    fake_pixels, real_pixels = fakes.features(), real.features()  # (N, P), (M, P)
    if min(len(fake_pixels), len(real_pixels)) <= DEFAULT_K:  # a k-NN ball needs k neighbours
        return None, None
    return precision_recall(fake_pixels, real_pixels)


def _elbo_metrics(
    vae: Checkpoint,
    reference: Checkpoint | None,
    sets: EvalSets,
    tgt: Target | None,
    seed: int,
    batch_size: int,
    device: torch.device,
    progress: Progress,
    shadows: list[Checkpoint] | None = None,
    scored: Checkpoint | None = None,
) -> tuple[dict, dict, dict]:
    """(MIA_KEYS, {retain_elbo, forget_elbo}, the same two of `scored` or None each) from
    negative ELBOs."""

    def nelbo(model: torch.nn.Module, data) -> torch.Tensor:
        return negative_elbo(
            model.to(device), DataImages(data, batch_size, device), batch_size, seed
        )

    def losses(model: torch.nn.Module) -> tuple:
        """The model's negative ELBOs on the test split (the retain ELBO and the MIA
        non-members), on the members and on the forget set (the members again when they are
        the same samples), None where a set is absent."""
        on_test = nelbo(model, sets.test)
        on_members = nelbo(model, sets.members) if sets.members is not None else None
        on_forget = None
        if sets.forget is not None and len(sets.forget):
            same = on_members is not None and sets.forget is sets.members
            on_forget = on_members if same else nelbo(model, sets.forget)
        return on_test, on_members, on_forget

    def elbos(on_test: torch.Tensor, on_forget: torch.Tensor | None) -> dict:
        forget = None if on_forget is None else on_forget.mean().item()
        return {"retain_elbo": on_test[sets.retain_mask].mean().item(), "forget_elbo": forget}

    on_test, on_members, on_forget = losses(vae.model)
    ref_losses = None  # the same of the reference, when something needs them
    if reference is not None and (scored is not None or sets.members is not None):
        ref_losses = losses(reference.model)
    privacy = dict.fromkeys(MIA_KEYS)
    if sets.members is not None and on_members is not None:
        assert sets.nonmember_mask is not None  # eval_sets sets both
        mask, weights = sets.nonmember_mask, sets.nonmember_weights
        shadow = None  # what models that never saw them make of members and non-members
        if shadows:
            shadow = [(nelbo(s.model, sets.members), nelbo(s.model, sets.test)) for s in shadows]
        privacy.update(_attacks(on_members, on_test[mask], shadow, mask, weights))
        if reference is not None:
            assert ref_losses is not None  # computed above whenever there are members
            warn_if_not_retrained(reference, sets, progress)
            ref_test, ref_members, _ = ref_losses
            ref = _attacks(ref_members, ref_test[mask], shadow, mask, weights)
            privacy.update({f"{k}_reference": v for k, v in ref.items()})
    ref_elbos = dict.fromkeys(("retain_elbo", "forget_elbo"))
    if scored is not None and ref_losses is not None:
        ref_elbos = elbos(ref_losses[0], ref_losses[2])
    return privacy, elbos(on_test, on_forget), ref_elbos


# membership inference: the plain ELBO attack and, with shadow models, the calibrated one; each
# also "..._reference", the same attack on the retrained reference
MIA_KEYS = tuple(
    f"{k}{suffix}"
    for suffix in ("", "_reference")
    for k in (
        "mia_auc",
        "mia_tpr_at_1fpr",
        "mia_tpr_at_01fpr",
        "mia_calibrated_auc",
        "mia_calibrated_tpr_at_1fpr",
        "mia_calibrated_tpr_at_01fpr",
    )
)


def _attacks(members, nonmembers, shadow, mask, weights) -> dict:
    """AUC and TPR at 1% and 0.1% FPR of the plain attack (score -nelbo) and, given `shadow` (each
    shadow's (members, test) nelbo), of the calibrated one."""
    out = {
        "mia_auc": mia_auc(-members, -nonmembers, weights),
        "mia_tpr_at_1fpr": tpr_at_fpr(-members, -nonmembers, 0.01, weights),
        "mia_tpr_at_01fpr": tpr_at_fpr(-members, -nonmembers, 0.001, weights),
    }
    if shadow:
        m = calibrated_scores(members, [s_members for s_members, _ in shadow])
        n = calibrated_scores(nonmembers, [s_test[mask] for _, s_test in shadow])
        out["mia_calibrated_auc"] = mia_auc(m, n, weights)
        out["mia_calibrated_tpr_at_1fpr"] = tpr_at_fpr(m, n, 0.01, weights)
        out["mia_calibrated_tpr_at_01fpr"] = tpr_at_fpr(m, n, 0.001, weights)
    return out


def _judge_metrics(
    fakes,
    real,
    judge: Checkpoint,
    reference: Checkpoint | None,
    tgt: Target | None,
    samples: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    scored: Checkpoint | None = None,
    spread: int = 0,
    memo: Memo | None = None,
) -> tuple[dict, dict]:
    """fratio (with its Wilson interval) and IS of the generated images `fakes`; FID,
    precision and recall against the held-out retain images `real`; FID against the same
    number of the reference's samples. Second, the same of the reference's samples when it is
    `scored` (else None each). With `spread` > 1, FID's and precision's standard deviation
    over that many sample seeds (`seed`, `seed + 1`, ...): their sampling error."""
    model = judge.model.to(device).eval()
    indices = judge_indices(judge, tgt)
    _, real_features = judge_outputs(model, real, batch_size)

    def fid_precision(features: torch.Tensor) -> tuple[float, float | None]:
        precision = None
        if min(len(features), len(real_features)) > DEFAULT_K:  # a k-NN ball needs k of them
            precision = precision_recall(features, real_features)[0]
        return fid_of_features(features, real_features), precision

    def judged(images, vae: torch.nn.Module) -> tuple[dict, torch.Tensor]:
        logits, features = judge_outputs(model, images, batch_size)  # one pass over them
        precision = recall = None
        if min(len(features), len(real_features)) > DEFAULT_K:  # a k-NN ball needs k of them
            precision, recall = precision_recall(features, real_features)
        fratio = interval = None
        if indices is not None:
            fratio = fratio_of_logits(logits, indices)
            interval = list(wilson_interval(round(fratio * len(logits)), len(logits)))
        fid = fid_of_features(features, real_features)
        fids: list[float | None] = [fid]
        precisions: list[float | None] = [precision]
        for s in range(seed + 1, seed + spread):  # the same model, other samples
            other = Generated(vae, samples, s, batch_size, device)
            f, p = fid_precision(judge_outputs(model, other, batch_size)[1])
            fids.append(f)
            precisions.append(p)
        return {
            "fratio": fratio,
            "fratio_interval": interval,
            "is": inception_score_of_logits(logits),
            "fid": fid,
            "precision": precision,
            "recall": recall,
            "fid_std": std(fids),
            "precision_std": std(precisions),
        }, features

    vae_model = fakes.images.vae
    scores, features = judged(fakes, vae_model)
    ref_scores = dict.fromkeys(JUDGED_KEYS)
    fid_reference = None
    if reference is not None:
        ref_model = reference.model.to(device).eval()
        ref_fakes = Generated(ref_model, samples, seed, batch_size, device)  # decoded lazily
        if scored is not None:
            ref_scores, ref_features = judged(ref_fakes, ref_model)
        else:

            def reference_features() -> torch.Tensor:
                return judge_outputs(model, ref_fakes, batch_size)[1]

            key = (judge.sha256, reference.sha256, samples, seed, batch_size, str(device))
            ref_features = (
                reference_features() if memo is None else memo.get(key, reference_features)
            )
        fid_reference = fid_of_features(features, ref_features)
    return {**scores, "fid_reference": fid_reference}, ref_scores


def judge_indices(judge: Checkpoint, tgt: Target | None) -> list[int] | None:
    """The judge's class indices that fratio counts for `tgt`; None for no class target."""
    if tgt is None or tgt.kind not in ("class", "attribute"):
        return None
    classes = judge_classes(judge.dataset)
    names = [str(c) for c in classes]  # digits, or class folders matched by name
    return [names.index(str(c)) for c in tgt.values] if tgt.kind == "class" else [1]


def std(values: Sequence[float | None]) -> float | None:
    """Sample standard deviation of `values`; None with fewer than two or a value missing."""
    if len(values) < 2 or any(v is None for v in values):
        return None
    known = [float(v) for v in values if v is not None]
    mean = sum(known) / len(known)
    return (sum((v - mean) ** 2 for v in known) / (len(known) - 1)) ** 0.5
